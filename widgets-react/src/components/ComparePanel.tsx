import * as React from "react";
import { SAME_WORDS, type CompareRow } from "../contract";
import type { ItemCache } from "../cache";
import type { TrailEntry } from "../hooks/useQueries";
import { moveFocus } from "../keyboard";
import type { Item } from "../request";
import { QueryCard, RecCard } from "./QueryPanel";

/**
 * The comparison view (`RecommenderWidget(compare=...)`): the query, then one aligned row
 * per embedding with its recommendations, each marked with the labels it shares with the
 * query, and the row's share of each in its heading.
 */
export function ComparePanel(props: {
  query: TrailEntry | Item | null;
  rows: CompareRow[];
  k: number;
  cache: ItemCache;
  pending: boolean;
  onPick: (id: number) => void;
}) {
  return (
    <section
      className={`rnb-panel rnb-compare${props.pending ? " rnb-pending" : ""}`}
      aria-label="Recommendations compared"
      aria-busy={props.pending}
    >
      <div className="rnb-query">
        <div className="rnb-heading">Query</div>
        <QueryCard query={props.query} />
      </div>
      <div className="rnb-recs">
        {props.rows.map((row, r) => (
          <Row key={row.name} row={row} k={props.k} cache={props.cache} first={r === 0} onPick={props.onPick} />
        ))}
      </div>
    </section>
  );
}

function Row(props: { row: CompareRow; k: number; cache: ItemCache; first: boolean; onPick: (id: number) => void }) {
  const { row } = props;
  const ref = React.useRef<HTMLOListElement>(null);
  const columns = Math.max(props.k, row.items.length);
  return (
    <div className="rnb-compare-row" data-row={row.name}>
      <div className="rnb-heading">
        <span className="rnb-row-name">{row.name}</span>
        {Object.entries(row.share).map(([label, share]) => (
          <span key={label} className="rnb-share" data-share={label}>
            same {SAME_WORDS[label] ?? label} {Math.round(share * row.items.length)}/{row.items.length}
          </span>
        ))}
      </div>
      {row.error ? (
        <p className="rnb-row-error">{row.error}</p>
      ) : (
        <ol
          ref={ref}
          className="rnb-rec-grid"
          style={{ gridTemplateColumns: `repeat(${columns}, minmax(0, 1fr))` }}
          onKeyDown={(e) => moveFocus(e, ref.current, columns)}
        >
          {row.items.map((rec, i) => (
            <li key={`${i}-${rec.id}`}>
              <RecCard rec={rec} item={props.cache.get(rec.id)} first={props.first && i === 0} onPick={props.onPick} same={rec.same} />
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
