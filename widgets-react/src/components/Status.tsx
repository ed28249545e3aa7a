/** One line: the error if there is one, else how many products and what to do. */
export function Status(props: { error: string; loading: boolean; total: number; page: number; size: number; subset?: boolean }) {
  const { error, total, page, size } = props;
  const where = props.subset ? " in the map's selection" : "";
  const shown = total ? `, ${page * size + 1}–${Math.min(total, (page + 1) * size)} shown` : "";
  return (
    <div className="rnb-status" role="status" aria-live="polite">
      {error ? (
        <span className="rnb-error">{error}</span>
      ) : props.loading ? (
        "Loading products…"
      ) : (
        `${total} product${total === 1 ? "" : "s"}${where}${shown}. Click a product (or drop an image file here) for recommendations.`
      )}
    </div>
  );
}
