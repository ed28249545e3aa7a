/** Request/response over anywidget custom messages, and the items of a reply. */
import type { Envelope, Model, ReplyFor, Request, WireItem } from "./contract";

/** A product ready to show: the thumbnail is an object URL (or null). */
export interface Item {
  id: number;
  name: string;
  labels: Record<string, string>;
  src: string | null;
}

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
