import * as React from "react";
import { ItemCache } from "./cache";
import { ComparePanel } from "./components/ComparePanel";
import { DropZone } from "./components/DropZone";
import { Grid } from "./components/Grid";
import { Pager } from "./components/Pager";
import { QueryPanel } from "./components/QueryPanel";
import { Status } from "./components/Status";
import { Toolbar } from "./components/Toolbar";
import { Trail } from "./components/Trail";
import { useGridPage } from "./hooks/useGridPage";
import { usePrefetch } from "./hooks/usePrefetch";
import { useQueries, type TrailEntry } from "./hooks/useQueries";
import { useShownItems } from "./hooks/useShownItems";
import { useTrait, useWidgetModel } from "./hooks/useTrait";
import type { Item } from "./request";

export type { TrailEntry } from "./hooks/useQueries";

const DEFAULT_PAGE_SIZE = 24;

/** The whole widget: toolbar, query panel (query + recommendations), trail and grid. */
export function App() {
  const model = useWidgetModel();
  const [selectedTrait] = useTrait("selected");
  const [recsTrait] = useTrait("recommendations");
  const [k] = useTrait("k");
  const [search, setSearch] = useTrait("search");
  const [filters, setFilters] = useTrait("filters");
  const [sameType, setSameType] = useTrait("same_type");
  const [pageSize] = useTrait("page_size");
  const [facets] = useTrait("facets");
  const [pyError] = useTrait("error");
  const [compared] = useTrait("compared");
  const [subset] = useTrait("subset");

  // UI-only state: never synced with Python.
  const cache = React.useMemo(() => new ItemCache(), []);
  React.useEffect(() => () => cache.clear(), [cache]);
  const [, changed] = React.useReducer((n: number) => n + 1, 0);
  const [localError, report] = React.useState("");
  const [page, setPage] = React.useState(0);
  const size = pageSize || DEFAULT_PAGE_SIZE;

  // A new subset (a linked map's selection) starts the grid again at its first page.
  React.useEffect(() => setPage(0), [subset]);
  const gridQuery = React.useMemo(
    () => ({ search: search ?? "", filters: filters ?? {}, offset: page * size, limit: size, subset: subset ?? null }),
    [search, filters, page, size, subset],
  );
  const { grid, loading } = useGridPage(model, cache, gridQuery, report);
  usePrefetch(model, cache);
  const traits = React.useMemo(() => ({ selected: selectedTrait ?? null, recs: recsTrait ?? [] }), [selectedTrait, recsTrait]);
  const { selected, recs, pending, uploaded, trail, query, queryImage, goBack } = useQueries(model, cache, traits, changed, report);
  const rows = React.useMemo(() => compared ?? [], [compared]);
  const shownIds = React.useMemo(
    () => [...(selected !== null ? [selected] : []), ...recs.map((r) => r.id), ...rows.flatMap((row) => row.items.map((i) => i.id))],
    [selected, recs, rows],
  );
  useShownItems(model, cache, shownIds, changed, report);

  const queryItem: TrailEntry | Item | null =
    selected !== null ? (cache.get(selected) ?? { id: selected, name: `#${selected}`, labels: {}, src: null }) : uploaded;
  const total = grid?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / size));
  const turnPage = (p: number) => setPage(Math.min(pages - 1, Math.max(0, p)));

  return (
    <DropZone onFile={(f) => void queryImage(f)}>
      <Toolbar
        search={search ?? ""}
        onSearch={(s) => {
          setSearch(s);
          setPage(0);
        }}
        filters={{
          facets: facets ?? {},
          filters: filters ?? {},
          onFilters: (f) => {
            setFilters(f);
            setPage(0);
          },
          sameType: Boolean(sameType),
          onSameType: setSameType,
          imageQuery: selected === null && uploaded !== null,
        }}
        onImage={(f) => void queryImage(f)}
      />
      {rows.length > 0 ? (
        <ComparePanel query={queryItem} rows={rows} k={k || 10} cache={cache} pending={pending !== null} onPick={query} />
      ) : (
        <QueryPanel query={queryItem} recs={recs} k={k || 10} cache={cache} pending={pending !== null} onPick={query} />
      )}
      <Trail trail={trail} onPick={goBack} />
      <Status error={localError || pyError || ""} loading={loading && !grid} total={total} page={page} size={size} subset={grid?.subset ?? false} />
      <Grid ids={grid?.ids ?? []} cache={cache} selected={selected} onPick={query} onPage={(d) => turnPage(page + d)} />
      <Pager page={page} pages={pages} onPage={turnPage} />
    </DropZone>
  );
}
