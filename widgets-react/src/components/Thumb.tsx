import { SHOWN_LABELS } from "../contract";

/** A product's thumbnail (a striped placeholder without one); `alt` is its name. */
export function Thumb({ src, alt }: { src: string | null; alt: string }) {
  return (
    <div className="rnb-thumb">{src ? <img src={src} alt={alt} draggable={false} /> : <span className="rnb-noimg" role="img" aria-label={alt} />}</div>
  );
}

/** A product's labels (articleType first); two when compact, else four. */
export function Labels({ labels, compact }: { labels: Record<string, string>; compact?: boolean }) {
  const shown = SHOWN_LABELS.filter((l) => labels[l]).slice(0, compact ? 2 : 4);
  return (
    <span className="rnb-labels">
      {shown.map((l) => (
        <span key={l} className="rnb-label" title={l}>
          {labels[l]}
        </span>
      ))}
    </span>
  );
}
