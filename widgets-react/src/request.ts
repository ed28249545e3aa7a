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
      performance.mark(`rnb:reply:${req.kind}`);
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
    performance.mark(`rnb:send:${req.kind}`);
    model.send({ ...req, uuid }, undefined, buffers);
  });
}

/**
 * Turn a reply's items into displayable items: thumbnails become object URLs. An item
 * `known` already has with a thumbnail keeps that URL (the image is not loaded again);
 * a new thumbnail starts decoding at once, before React shows it.
 */
export function decodeItems(items: WireItem[], buffers: DataView[], known?: (id: number) => Item | undefined): Item[] {
  return items.map((w) => {
    let src: string | null = known?.(w.id)?.src ?? null;
    if (src === null && w.thumb !== null && w.thumb !== undefined && buffers[w.thumb]) {
      const view = buffers[w.thumb];
      const bytes = new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength);
      src = dataUrl(bytes, w.mime ?? "image/jpeg");
      predecode(src);
    }
    return { id: w.id, name: w.name, labels: w.labels ?? {}, src };
  });
}

/** Start loading and decoding an image off the main thread (the <img> showing it later
 * finds it decoded in the browser's image cache). */
function predecode(src: string): void {
  if (typeof Image === "undefined") return;
  const img = new Image();
  img.decoding = "async";
  img.src = src;
  img.decode?.().catch(() => undefined);
}

/** A data: URL of some image bytes: the renderer decodes it itself, where an object URL is
 * fetched through the browser process first (some 20-30 ms for a reply's thumbnails). */
function dataUrl(bytes: Uint8Array, mime: string): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:${mime};base64,${btoa(text)}`;
}
