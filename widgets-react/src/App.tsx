import * as React from "react";
import { useModel, useModelState } from "@anywidget/react";
import {
  decodeItems,
  request,
  SHOWN_LABELS,
  type Item,
  type Model,
  type Recommendation,
  type WidgetModel,
} from "./contract";
import { ItemCache } from "./cache";

const SEARCH_DEBOUNCE_MS = 250;
const TRAIL_LENGTH = 10;
const REC_COLUMNS = 5;

/** One past query: a catalogue product, or a dropped image (kept to ask again). */
export interface TrailEntry {
  key: number;
  id: number | null;
  name: string;
  src: string | null;
  file?: File;
}

function useTrait<K extends keyof WidgetModel>(key: K) {
  return useModelState<WidgetModel[K]>(key as string);
}

/** The whole widget: toolbar, query panel (query + recommendations, trail) and grid. */
export function App() {
  const model = useModel<WidgetModel>() as Model;
  const [selected] = useTrait("selected");
  const [recs] = useTrait("recommendations");
  const [k] = useTrait("k");
  const [search, setSearch] = useTrait("search");
  const [filters, setFilters] = useTrait("filters");
  const [pageSize] = useTrait("page_size");
  const [facets] = useTrait("facets");
  const [pyError] = useTrait("error");

  // UI-only state: never synced with Python.
  const cache = React.useMemo(() => new ItemCache(), []);
  const [, bump] = React.useReducer((n: number) => n + 1, 0);
  const [page, setPage] = React.useState(0);
  const [grid, setGrid] = React.useState<{ total: number; ids: number[] } | null>(null);
  const [gridLoading, setGridLoading] = React.useState(false);
  const [pending, setPending] = React.useState<number | "image" | null>(null);
  const [uploaded, setUploaded] = React.useState<TrailEntry | null>(null);
  const [trail, setTrail] = React.useState<TrailEntry[]>([]);
  const [localError, setLocalError] = React.useState("");
  const trailKey = React.useRef(0);

  React.useEffect(() => () => cache.clear(), [cache]);

  // The grid page: asked again whenever search, filters, page or page size change.
  const gridRequest = React.useRef(0);
  React.useEffect(() => {
    const mine = ++gridRequest.current;
    setGridLoading(true);
    request(model, {
      kind: "page",
      search: search ?? "",
      filters: filters ?? {},
      offset: page * (pageSize || 24),
      limit: pageSize || 24,
    })
      .then(({ reply, buffers }) => {
        if (mine !== gridRequest.current) return;
        const items = decodeItems(reply.items, buffers);
        cache.putAll(items);
        setGrid({ total: reply.total, ids: items.map((i) => i.id) });
        setLocalError("");
      })
      .catch((err: Error) => mine === gridRequest.current && setLocalError(err.message))
      .finally(() => mine === gridRequest.current && setGridLoading(false));
  }, [model, cache, search, filters, page, pageSize]);

  // Products shown in the query panel that this view has not seen yet (say, Python
  // set `selected` or `recommendations`): ask for their names and thumbnails.
  const shownIds = React.useMemo(
    () => [...(selected !== null && selected !== undefined ? [selected] : []), ...(recs ?? []).map((r) => r.id)],
    [selected, recs],
  );
  React.useEffect(() => {
    const missing = shownIds.filter((id) => !cache.has(id) && !cache.isLoading(id));
    if (missing.length === 0) return;
    cache.markLoading(missing);
    request(model, { kind: "items", ids: missing })
      .then(({ reply, buffers }) => {
        cache.putAll(decodeItems(reply.items, buffers));
        bump();
      })
      .catch((err: Error) => setLocalError(err.message))
      .finally(() => cache.doneLoading(missing));
  }, [model, cache, shownIds]);

  // The trail follows `selected`, whoever set it (a click here, or Python).
  React.useEffect(() => {
    if (selected === null || selected === undefined) return;
    setTrail((t) => {
      if (t.length && t[t.length - 1].id === selected) return t;
      const name = cache.get(selected)?.name ?? `#${selected}`;
      const entry = { key: ++trailKey.current, id: selected, name, src: null };
      return [...t, entry].slice(-TRAIL_LENGTH);
    });
    setUploaded(null);
  }, [selected, cache]);

  const query = React.useCallback(
    (id: number) => {
      setPending(id);
      request(model, { kind: "recommend", item_id: id })
        .then(({ reply, buffers }) => {
          const items = decodeItems(reply.query ? [reply.query, ...reply.items] : reply.items, buffers);
          cache.putAll(items);
          setLocalError("");
          bump();
        })
        .catch((err: Error) => setLocalError(err.message))
        .finally(() => setPending(null));
    },
    [model, cache],
  );

  const queryImage = React.useCallback(
    async (file: File, fromTrail?: TrailEntry) => {
      if (!file.type.startsWith("image/") && !/\.(jpe?g|png|gif|bmp|webp)$/i.test(file.name)) {
        setLocalError(`${file.name} is not an image file`);
        return;
      }
      const entry: TrailEntry = fromTrail ?? {
        key: ++trailKey.current,
        id: null,
        name: file.name,
        src: URL.createObjectURL(file),
        file,
      };
      setPending("image");
      try {
        const data = await file.arrayBuffer();
        const { reply, buffers } = await request(
          model,
          { kind: "recommend", image: { name: file.name, type: file.type } },
          [data],
        );
        cache.putAll(decodeItems(reply.items, buffers));
        setUploaded(entry);
        if (!fromTrail) setTrail((t) => [...t, entry].slice(-TRAIL_LENGTH));
        setLocalError("");
      } catch (err) {
        setLocalError((err as Error).message);
      } finally {
        setPending(null);
      }
    },
    [model, cache],
  );

  const goBack = (index: number) => {
    const entry = trail[index];
    setTrail((t) => t.slice(0, index + 1));
    if (entry.id !== null) query(entry.id);
    else if (entry.file) void queryImage(entry.file, entry);
  };

  const queryItem: TrailEntry | Item | null =
    selected !== null && selected !== undefined
      ? (cache.get(selected) ?? { id: selected, name: `#${selected}`, labels: {}, src: null })
      : uploaded;

  const error = localError || pyError;
  const total = grid?.total ?? 0;
  const size = pageSize || 24;
  const pages = Math.max(1, Math.ceil(total / size));

  return (
    <div
      className="rnb-root"
      onDragOver={(e) => {
        if (e.dataTransfer?.types?.includes("Files")) e.preventDefault();
      }}
      onDrop={(e) => {
        const file = e.dataTransfer?.files?.[0];
        if (file) {
          e.preventDefault();
          void queryImage(file);
        }
      }}
    >
      <Toolbar
        search={search ?? ""}
        onSearch={(s) => {
          setSearch(s);
          setPage(0);
        }}
        facets={facets ?? {}}
        filters={filters ?? {}}
        onFilters={(f) => {
          setFilters(f);
          setPage(0);
        }}
        onImage={(f) => void queryImage(f)}
      />
      <QueryPanel
        query={queryItem}
        recs={recs ?? []}
        k={k || 10}
        cache={cache}
        pending={pending !== null}
        onPick={query}
      />
      <Trail trail={trail} onPick={goBack} />
      <div className="rnb-status" role="status" aria-live="polite">
        {error ? (
          <span className="rnb-error">{error}</span>
        ) : gridLoading && !grid ? (
          "Loading products…"
        ) : (
          `${total} product${total === 1 ? "" : "s"}${
            total ? `, ${page * size + 1}–${Math.min(total, (page + 1) * size)} shown` : ""
          }. Click a product (or drop an image file here) for recommendations.`
        )}
      </div>
      <Grid ids={grid?.ids ?? []} cache={cache} selected={selected ?? null} onPick={query} onPage={(d) => setPage((p) => Math.min(pages - 1, Math.max(0, p + d)))} />
      <div className="rnb-pager">
        <button type="button" disabled={page === 0} onClick={() => setPage((p) => Math.max(0, p - 1))}>
          ‹ Previous
        </button>
        <span>
          Page {Math.min(page + 1, pages)} of {pages}
        </span>
        <button type="button" disabled={page + 1 >= pages} onClick={() => setPage((p) => p + 1)}>
          Next ›
        </button>
      </div>
    </div>
  );
}

function Toolbar(props: {
  search: string;
  onSearch: (s: string) => void;
  facets: Record<string, string[]>;
  filters: Record<string, string[]>;
  onFilters: (f: Record<string, string[]>) => void;
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

/** The query and exactly k recommendation slots, so nothing moves when results arrive. */
function QueryPanel(props: {
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
        {props.query ? (
          <figure className="rnb-card rnb-query-card" data-id={props.query.id ?? "image"}>
            <Thumb src={props.query.src} alt={props.query.name} />
            <figcaption>
              <div className="rnb-name">{props.query.name}</div>
              {"labels" in props.query && <Labels labels={props.query.labels} />}
              {props.query.id === null && <div className="rnb-label">new product (image)</div>}
            </figcaption>
          </figure>
        ) : (
          <div className="rnb-card rnb-query-card rnb-empty">
            <div className="rnb-thumb" />
            <p>Click a product below</p>
          </div>
        )}
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
            const item = rec ? props.cache.get(rec.id) : undefined;
            if (!rec) return <li key={`empty-${i}`} className="rnb-card rnb-empty" aria-hidden="true"><div className="rnb-thumb" /></li>;
            const name = item?.name ?? `#${rec.id}`;
            return (
              <li key={`${i}-${rec.id}`}>
                <button
                  type="button"
                  className="rnb-card rnb-rec"
                  data-id={rec.id}
                  title={name}
                  tabIndex={i === 0 ? 0 : -1}
                  onClick={() => props.onPick(rec.id)}
                >
                  <Thumb src={item?.src ?? null} alt={name} />
                  <span className="rnb-score">
                    #{rec.rank} · {rec.score === null ? "–" : rec.score.toFixed(3)}
                  </span>
                  <span className="rnb-name">{name}</span>
                  {item && <Labels labels={item.labels} compact />}
                </button>
              </li>
            );
          })}
        </ol>
      </div>
    </section>
  );
}

function Trail(props: { trail: TrailEntry[]; onPick: (index: number) => void }) {
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

function Grid(props: {
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
              onClick={() => props.onPick(id)}
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

function Thumb({ src, alt }: { src: string | null; alt: string }) {
  return (
    <div className="rnb-thumb">{src ? <img src={src} alt={alt} draggable={false} /> : <span className="rnb-noimg" role="img" aria-label={alt} />}</div>
  );
}

function Labels({ labels, compact }: { labels: Record<string, string>; compact?: boolean }) {
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

/** Columns of a CSS grid as laid out (1 when unknown, e.g. without layout). */
function gridColumns(el: HTMLElement | null): number {
  if (!el) return 1;
  const buttons = Array.from(el.querySelectorAll<HTMLElement>("button"));
  if (buttons.length < 2) return 1;
  const top = buttons[0].getBoundingClientRect().top;
  const sameRow = buttons.filter((b) => b.getBoundingClientRect().top === top).length;
  return sameRow === buttons.length && top === 0 && buttons[1].getBoundingClientRect().left === 0 ? 1 : sameRow;
}

/** Arrow keys move focus between the buttons of a list laid out as a grid (roving tabindex). */
function moveFocus(e: React.KeyboardEvent, el: HTMLElement | null, columns: number) {
  if (!el) return;
  const buttons = Array.from(el.querySelectorAll<HTMLButtonElement>("button"));
  const current = buttons.indexOf(document.activeElement as HTMLButtonElement);
  if (current < 0) return;
  const step: Record<string, number> = {
    ArrowRight: 1,
    ArrowLeft: -1,
    ArrowDown: columns,
    ArrowUp: -columns,
  };
  let next: number;
  if (e.key in step) next = current + step[e.key];
  else if (e.key === "Home") next = 0;
  else if (e.key === "End") next = buttons.length - 1;
  else return;
  e.preventDefault();
  next = Math.max(0, Math.min(buttons.length - 1, next));
  buttons[current].tabIndex = -1;
  buttons[next].tabIndex = 0;
  buttons[next].focus();
}
