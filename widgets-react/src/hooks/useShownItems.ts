/**
 * Products shown in the query panel that this view has not seen yet (say, Python set
 * `selected` or `recommendations`): ask for their names and thumbnails.
 */
import * as React from "react";
import type { Model } from "../contract";
import type { ItemCache } from "../cache";
import { request } from "../request";

export function useShownItems(model: Model, cache: ItemCache, ids: number[], changed: () => void, report: (error: string) => void) {
  React.useEffect(() => {
    const missing = ids.filter((id) => !cache.has(id) && !cache.isLoading(id));
    if (missing.length === 0) return;
    cache.markLoading(missing);
    request(model, { kind: "items", ids: missing })
      .then(({ reply, buffers }) => {
        cache.receive(reply.items, buffers);
        changed();
      })
      .catch((err: Error) => report(err.message))
      .finally(() => cache.doneLoading(missing));
  }, [model, cache, ids, changed, report]);
}
