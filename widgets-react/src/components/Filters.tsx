/** One select per facet (label), and the "same type as the query" toggle. */
export function Filters(props: {
  facets: Record<string, string[]>;
  filters: Record<string, string[]>;
  onFilters: (f: Record<string, string[]>) => void;
  sameType: boolean;
  onSameType: (on: boolean) => void;
  /** The query is an image: it has no type to match. */
  imageQuery: boolean;
}) {
  return (
    <>
      {Object.entries(props.facets).map(([label, values]) => {
        const current = props.filters[label] ?? [];
        return (
          <select
            key={label}
            aria-label={`Filter by ${label}`}
            value={current.length === 1 ? current[0] : current.length ? "__several__" : ""}
            onChange={(e) => {
              const next = { ...props.filters };
              if (e.target.value === "") delete next[label];
              else next[label] = [e.target.value];
              props.onFilters(next);
            }}
          >
            <option value="">{`All ${label}`}</option>
            {current.length > 1 && <option value="__several__">{`${current.length} values`}</option>}
            {values.map((v) => (
              <option key={v} value={v}>
                {v}
              </option>
            ))}
          </select>
        );
      })}
      <label className="rnb-toggle" title="Recommend only products of the query's articleType">
        <input type="checkbox" checked={props.sameType} onChange={(e) => props.onSameType(e.target.checked)} />
        same type as the query
        {props.sameType && props.imageQuery && <span className="rnb-hint"> (not for an image)</span>}
      </label>
    </>
  );
}
