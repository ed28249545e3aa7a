import * as React from "react";
import { Filters } from "./Filters";

const SEARCH_DEBOUNCE_MS = 250;

/** Search box (debounced), filters, the same-type toggle and "Choose image…". */
export function Toolbar(props: {
  search: string;
  onSearch: (s: string) => void;
  filters: React.ComponentProps<typeof Filters>;
  onImage: (f: File) => void;
}) {
  const [text, setText] = React.useState(props.search);
  const { search, onSearch } = props;
  React.useEffect(() => setText(search), [search]);
  React.useEffect(() => {
    if (text === search) return;
    const timer = setTimeout(() => onSearch(text), SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [text, search, onSearch]);
  const fileInput = React.useRef<HTMLInputElement>(null);

  return (
    <div className="rnb-toolbar">
      <input
        type="search"
        className="rnb-search"
        placeholder="Search by name…"
        aria-label="Search products by name"
        value={text}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => e.key === "Enter" && onSearch(text)}
      />
      <Filters {...props.filters} />
      <button type="button" onClick={() => fileInput.current?.click()}>
        Choose image…
      </button>
      <input
        ref={fileInput}
        type="file"
        accept="image/*"
        className="rnb-file"
        aria-label="Image file of a new product"
        onChange={(e) => {
          const file = e.target.files?.[0];
          if (file) props.onImage(file);
          e.target.value = "";
        }}
      />
    </div>
  );
}
