/**
 * Products Python sends ahead (the `prefetch` push, after each product query): into the
 * cache, their thumbnails decoding at once, so that the next click paints without waiting
 * for its pictures.
 */
import * as React from "react";
import type { Model, Push } from "../contract";
import type { ItemCache } from "../cache";

export function usePrefetch(model: Model, cache: ItemCache) {
  React.useEffect(() => {
    const onMessage = (msg: unknown, buffers?: DataView[]) => {
      const push = msg as Push;
      if (!push || typeof push !== "object" || push.kind !== "prefetch" || "uuid" in push) return;
      cache.receive(push.items, buffers ?? []);
    };
    model.on("msg:custom", onMessage);
    return () => model.off("msg:custom", onMessage);
  }, [model, cache]);
}
