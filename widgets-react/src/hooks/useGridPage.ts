/**
 * The grid's page of products, asked again whenever search, filters, page, size or the
 * subset change (Python applies its own `subset` trait: it is not part of the request).
 */
import * as React from "react";
import type { Model } from "../contract";
import type { ItemCache } from "../cache";
import { request } from "../request";

export interface GridPage {
  total: number;
  ids: number[];
  /** Whether this page was asked for within a subset (the status says so with it). */
  subset: boolean;
}

export function useGridPage(
  model: Model,
  cache: ItemCache,
  query: { search: string; filters: Record<string, string[]>; offset: number; limit: number; subset: number[] | null },
  report: (error: string) => void,
): { grid: GridPage | null; loading: boolean } {
  const [grid, setGrid] = React.useState<GridPage | null>(null);
  const [loading, setLoading] = React.useState(false);
  const latest = React.useRef(0);
  const { search, filters, offset, limit, subset } = query;
  React.useEffect(() => {
    const mine = ++latest.current;
    setLoading(true);
    request(model, { kind: "page", search, filters, offset, limit })
      .then(({ reply, buffers }) => {
        if (mine !== latest.current) return;
        const items = cache.receive(reply.items, buffers);
        setGrid({ total: reply.total, ids: items.map((i) => i.id), subset: subset !== null });
        report("");
      })
      .catch((err: Error) => mine === latest.current && report(err.message))
      .finally(() => mine === latest.current && setLoading(false));
  }, [model, cache, search, filters, offset, limit, subset, report]);
  return { grid, loading };
}
