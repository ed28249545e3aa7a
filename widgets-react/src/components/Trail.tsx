import type { TrailEntry } from "../hooks/useQueries";

/** Past queries, the current one last; a click (or "← Back") asks again. */
export function Trail(props: { trail: TrailEntry[]; onPick: (index: number) => void }) {
  return (
    <nav className="rnb-trail" aria-label="Previous queries">
      <span className="rnb-heading">Trail</span>
      {props.trail.length === 0 && <span className="rnb-hint">your queries will appear here</span>}
      {props.trail.length > 1 && (
        <button type="button" className="rnb-back" onClick={() => props.onPick(props.trail.length - 2)}>
          ← Back
        </button>
      )}
      <ol>
        {props.trail.map((entry, i) => (
          <li key={entry.key}>
            <button
              type="button"
              data-trail={entry.id ?? "image"}
              aria-current={i === props.trail.length - 1 ? "step" : undefined}
              disabled={i === props.trail.length - 1}
              onClick={() => props.onPick(i)}
            >
              {entry.name}
            </button>
          </li>
        ))}
      </ol>
    </nav>
  );
}
