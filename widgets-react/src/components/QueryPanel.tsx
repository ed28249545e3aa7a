import * as React from "react";
import { SAME_WORDS, type Recommendation } from "../contract";
import type { ItemCache } from "../cache";
import type { TrailEntry } from "../hooks/useQueries";
import { moveFocus } from "../keyboard";
import { pickProps } from "../pick";
import type { Item } from "../request";
import { Labels, Thumb } from "./Thumb";

const REC_COLUMNS = 5;

/** The query and exactly k recommendation slots, so nothing moves when results arrive. */
export function QueryPanel(props: {
  query: TrailEntry | Item | null;
  recs: Recommendation[];
  k: number;
  cache: ItemCache;
  pending: boolean;
  onPick: (id: number) => void;
}) {
  const slots = Math.max(props.k, props.recs.length);
  const ref = React.useRef<HTMLOListElement>(null);
  return (
    <section className={`rnb-panel${props.pending ? " rnb-pending" : ""}`} aria-label="Recommendations" aria-busy={props.pending}>
      <div className="rnb-query">
        <div className="rnb-heading">Query</div>
        <QueryCard query={props.query} />
      </div>
      <div className="rnb-recs">
        <div className="rnb-heading">Recommendations</div>
        <ol
          ref={ref}
          className="rnb-rec-grid"
          style={{ gridTemplateColumns: `repeat(${REC_COLUMNS}, minmax(0, 1fr))` }}
          onKeyDown={(e) => moveFocus(e, ref.current, REC_COLUMNS)}
        >
          {Array.from({ length: slots }, (_, i) => {
            const rec = props.recs[i];
            if (!rec) {
              return (
                <li key={`empty-${i}`} className="rnb-card rnb-empty" aria-hidden="true">
                  <div className="rnb-thumb" />
                </li>
              );
            }
            return (
              <li key={`${i}-${rec.id}`}>
                <RecCard rec={rec} item={props.cache.get(rec.id)} first={i === 0} onPick={props.onPick} />
              </li>
            );
          })}
        </ol>
      </div>
    </section>
  );
}

export function QueryCard({ query }: { query: TrailEntry | Item | null }) {
  if (!query) {
    return (
      <div className="rnb-card rnb-query-card rnb-empty">
        <div className="rnb-thumb" />
        <p>Click a product below</p>
      </div>
    );
  }
  return (
    <figure className="rnb-card rnb-query-card" data-id={query.id ?? "image"}>
      <Thumb src={query.src} alt={query.name} />
      <figcaption>
        <div className="rnb-name">{query.name}</div>
        {"labels" in query && <Labels labels={query.labels} />}
        {query.id === null && <div className="rnb-label">new product (image)</div>}
      </figcaption>
    </figure>
  );
}

export function RecCard(props: {
  rec: Recommendation;
  item: Item | undefined;
  first: boolean;
  onPick: (id: number) => void;
  /** Labels shared with the query (the comparison view marks them). */
  same?: string[];
}) {
  const { rec, item } = props;
  const name = item?.name ?? `#${rec.id}`;
  return (
    <button
      type="button"
      className="rnb-card rnb-rec"
      data-id={rec.id}
      title={name}
      tabIndex={props.first ? 0 : -1}
      {...pickProps(rec.id, props.onPick)}
    >
      <Thumb src={item?.src ?? null} alt={name} />
      <span className="rnb-score">
        #{rec.rank} · {rec.score === null ? "–" : rec.score.toFixed(3)}
      </span>
      <span className="rnb-name">{name}</span>
      {item && <Labels labels={item.labels} compact />}
      {props.same && (
        <span className="rnb-marks">
          {props.same.map((label) => (
            <span key={label} className="rnb-same" data-same={label} title={`same ${label} as the query`}>
              {SAME_WORDS[label] ?? label}
            </span>
          ))}
        </span>
      )}
    </button>
  );
}
