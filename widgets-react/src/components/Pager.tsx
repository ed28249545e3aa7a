/** "‹ Previous", "Page n of m", "Next ›". `page` counts from 0. */
export function Pager(props: { page: number; pages: number; onPage: (page: number) => void }) {
  const { page, pages } = props;
  return (
    <div className="rnb-pager">
      <button type="button" disabled={page === 0} onClick={() => props.onPage(Math.max(0, page - 1))}>
        ‹ Previous
      </button>
      <span>
        Page {Math.min(page + 1, pages)} of {pages}
      </span>
      <button type="button" disabled={page + 1 >= pages} onClick={() => props.onPage(page + 1)}>
        Next ›
      </button>
    </div>
  );
}
