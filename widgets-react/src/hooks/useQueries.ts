/**
 * Queries: a product (by id) or an image file, the one pending, and the trail of past
 * queries, which follows `selected` whoever set it (a click here, or Python).
 */
import * as React from "react";
import type { Model } from "../contract";
import type { ItemCache } from "../cache";
import { decodeItems, request } from "../request";
import { uploadProblem } from "../upload";

const TRAIL_LENGTH = 10;

/** One past query: a catalogue product, or an image file (kept to ask again). */
export interface TrailEntry {
  key: number;
  id: number | null;
  name: string;
  src: string | null;
  file?: File;
}

export function useQueries(
  model: Model,
  cache: ItemCache,
  selected: number | null,
  changed: () => void,
  report: (error: string) => void,
) {
  const [pending, setPending] = React.useState<number | "image" | null>(null);
  const [uploaded, setUploaded] = React.useState<TrailEntry | null>(null);
  const [trail, setTrail] = React.useState<TrailEntry[]>([]);
  const trailKey = React.useRef(0);

  React.useEffect(() => {
    if (selected === null) return;
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
          cache.putAll(decodeItems(reply.query ? [reply.query, ...reply.items] : reply.items, buffers));
          report("");
          changed();
        })
        .catch((err: Error) => report(err.message))
        .finally(() => setPending(null));
    },
    [model, cache, changed, report],
  );

  const queryImage = React.useCallback(
    async (file: File, fromTrail?: TrailEntry) => {
      const problem = uploadProblem(file);
      if (problem) {
        report(problem);
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
        const image = { name: file.name, type: file.type };
        const { reply, buffers } = await request(model, { kind: "recommend", image }, [data]);
        cache.putAll(decodeItems(reply.items, buffers));
        setUploaded(entry);
        if (!fromTrail) setTrail((t) => [...t, entry].slice(-TRAIL_LENGTH));
        report("");
      } catch (err) {
        if (!fromTrail && entry.src) URL.revokeObjectURL(entry.src);
        report((err as Error).message);
      } finally {
        setPending(null);
      }
    },
    [model, cache, report],
  );

  const goBack = (index: number) => {
    const entry = trail[index];
    setTrail((t) => t.slice(0, index + 1));
    if (entry.id !== null) query(entry.id);
    else if (entry.file) void queryImage(entry.file, entry);
  };

  return { pending, uploaded, trail, query, queryImage, goBack };
}
