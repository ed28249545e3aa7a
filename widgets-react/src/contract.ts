/**
 * The JS side of the Python/JS contract of recsys_nb.RecommenderWidget.
 *
 * Mirror of the module docstring of recsys_nb/widget.py: keep the two in step.
 * Nothing else in src/ names a trait or a message kind.
 */
import type { AnyModel } from "@anywidget/types";

/** Synced traits (see recsys_nb/widget.py for who writes each). */
export interface WidgetModel {
  /** The query product's id; null: nothing selected, or the query is a dropped image. */
  selected: number | null;
  /** Best first; written by Python after each query. */
  recommendations: Recommendation[];
  /** How many recommendations. */
  k: number;
  /** Case-insensitive substring of the product name (digits also match ids). */
  search: string;
  /** Label -> allowed values; restricts the grid and the recommendations. */
  filters: Record<string, string[]>;
  /** Thumbnails per grid page. */
  page_size: number;
  /** Label -> values offered as filters (read-only here). */
  facets: Record<string, string[]>;
  /** The last error, "" when none (read-only here). */
  error: string;
}

export interface Recommendation {
  id: number;
  score: number | null;
  rank: number;
}

/** A product as a reply lists it; `thumb` indexes the reply's binary buffers. */
export interface WireItem {
  id: number;
  name: string;
  labels: Record<string, string>;
  thumb: number | null;
  mime: string | null;
  score?: number;
  rank?: number;
}

/** A product ready to show: the thumbnail is an object URL (or null). */
export interface Item {
  id: number;
  name: string;
  labels: Record<string, string>;
  src: string | null;
}

export type PageRequest = {
  kind: "page";
  search: string;
  filters: Record<string, string[]>;
  offset: number;
  limit: number;
};
export type RecommendRequest =
  | { kind: "recommend"; item_id: number }
  | { kind: "recommend"; image: { name: string; type: string } };
export type ItemsRequest = { kind: "items"; ids: number[] };
export type Request = PageRequest | RecommendRequest | ItemsRequest;

export interface PageReply {
  total: number;
  offset: number;
  items: WireItem[];
}
export interface RecommendReply {
  selected: number | null;
  query: WireItem | null;
  items: WireItem[];
}
export interface ItemsReply {
  items: WireItem[];
}
export type ReplyFor<R extends Request> = R extends PageRequest
  ? PageReply
  : R extends RecommendRequest
    ? RecommendReply
    : ItemsReply;

type Envelope = { kind: string; uuid: string; ok: boolean; error?: string };

export type Model = AnyModel<WidgetModel>;

/** Labels shown under a recommendation, in this order. */
export const SHOWN_LABELS = ["articleType", "baseColour", "gender", "masterCategory", "label"];

/** How long a request may wait for its reply. */
export const REQUEST_TIMEOUT_MS = 60_000;

export class RequestError extends Error {}

function newUuid(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * Send one request as a custom message and resolve with Python's reply (the one that
 * repeats its uuid) together with the reply's binary buffers.
 */
export function request<R extends Request>(
  model: Model,
  req: R,
  buffers: ArrayBuffer[] = [],
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<{ reply: ReplyFor<R>; buffers: DataView[] }> {
  const uuid = newUuid();
  return new Promise((resolve, reject) => {
    const onMessage = (msg: unknown, replyBuffers?: DataView[]) => {
      const m = msg as Envelope;
      if (!m || typeof m !== "object" || m.uuid !== uuid) return;
      cleanup();
      if (m.ok) resolve({ reply: m as unknown as ReplyFor<R>, buffers: replyBuffers ?? [] });
      else reject(new RequestError(m.error ?? `${req.kind} request failed`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new RequestError(`no answer from Python to the ${req.kind} request (is the kernel running?)`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      model.off("msg:custom", onMessage);
    };
    model.on("msg:custom", onMessage);
    model.send({ ...req, uuid }, undefined, buffers);
  });
}

/** Turn a reply's items into displayable items: thumbnails become object URLs. */
export function decodeItems(items: WireItem[], buffers: DataView[]): Item[] {
  return items.map((w) => {
    let src: string | null = null;
    if (w.thumb !== null && w.thumb !== undefined && buffers[w.thumb]) {
      const view = buffers[w.thumb];
      const bytes = new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength);
      src = URL.createObjectURL(new Blob([bytes], { type: w.mime ?? "image/jpeg" }));
    }
    return { id: w.id, name: w.name, labels: w.labels ?? {}, src };
  });
}
