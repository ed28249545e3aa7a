import * as React from "react";
import type { ItemCache } from "../cache";
import { gridColumns, moveFocus } from "../keyboard";
import { pickProps } from "../pick";
import { Thumb } from "./Thumb";

/** One page of products; arrow keys move the focus, PageUp/PageDown change the page. */
export function Grid(props: {
  ids: number[];
  cache: ItemCache;
  selected: number | null;
  onPick: (id: number) => void;
  onPage: (delta: number) => void;
}) {
  const ref = React.useRef<HTMLUListElement>(null);
  return (
    <ul
      ref={ref}
      className="rnb-grid"
      aria-label="Products"
      onKeyDown={(e) => {
        if (e.key === "PageDown") props.onPage(1);
        else if (e.key === "PageUp") props.onPage(-1);
        else moveFocus(e, ref.current, gridColumns(ref.current));
      }}
    >
      {props.ids.map((id, i) => {
        const item = props.cache.get(id);
        const name = item?.name ?? `#${id}`;
        return (
          <li key={id}>
            <button
              type="button"
              className={`rnb-card rnb-product${id === props.selected ? " rnb-selected" : ""}`}
              data-id={id}
              title={name}
              tabIndex={i === 0 ? 0 : -1}
              aria-pressed={id === props.selected}
              {...pickProps(id, props.onPick)}
            >
              <Thumb src={item?.src ?? null} alt={name} />
              <span className="rnb-name">{name}</span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
