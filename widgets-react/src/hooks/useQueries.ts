/**
 * Queries: a product (by id) or an image file, the one pending, and the trail of past
 * queries, which follows `selected` whoever set it (a click here, or Python).
 *
 * The view shows a query's answer as soon as the reply comes (it repeats the selection and
 * the recommendations): it does not wait for the trait updates that follow it, which then
 * take over again.
 */
import * as React from "react";
import type { Model, Recommendation } from "../contract";
import type { ItemCache } from "../cache";
import { request } from "../request";
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

/** What the view shows: the query's id (null for an image) and its recommendations. */
export interface Shown {
  selected: number | null;
  recs: Recommendation[];
}

export function useQueries(
  model: Model,
  cache: ItemCache,
  traits: Shown,
  changed: () => void,
  report: (error: string) => void,
) {
  const [pending, setPending] = React.useState<number | "image" | null>(null);
  const [answer, setAnswer] = React.useState<Shown | null>(null);
  // The traits caught up (or Python changed them): they are what the view shows again.
  React.useEffect(() => setAnswer(null), [traits.selected, traits.recs]);
  const { selected, recs } = answer ?? traits;
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
          cache.receive([...(reply.query ? [reply.query] : []), ...reply.items, ...(reply.also ?? [])], buffers);
          setAnswer(answerOf(reply.selected, reply.items));
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
        cache.receive([...reply.items, ...(reply.also ?? [])], buffers);
        setAnswer(answerOf(null, reply.items));
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

  return { selected, recs, pending, uploaded, trail, query, queryImage, goBack };
}

function answerOf(selected: number | null, items: { id: number; score?: number; rank?: number }[]): Shown {
  return { selected, recs: items.map((w, i) => ({ id: w.id, score: w.score ?? null, rank: w.rank ?? i + 1 })) };
}
