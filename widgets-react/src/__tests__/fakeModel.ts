/**
 * An in-memory anywidget model for component tests: the traits of contract.ts (with the
 * defaults of recsys_nb/widget/contract.json), and a
 * `reply` function playing Python's part for custom messages (asynchronously, like a
 * kernel). Only the front end is under test here; Python's answers are tested in
 * tests/test_widget.py against a real store.
 */
import { DEFAULTS, type WidgetModel, type WireItem } from "../contract";

type Handler = (...args: any[]) => void;
export type Sent = { content: any; buffers: ArrayBuffer[] };

export class FakeModel {
  state: WidgetModel;
  sent: Sent[] = [];
  saved = 0;
  private handlers = new Map<string, Set<Handler>>();

  constructor(
    public reply: (model: FakeModel, content: any, buffers?: ArrayBuffer[]) => void,
    state: Partial<WidgetModel> = {},
  ) {
    this.state = { ...structuredClone(DEFAULTS), ...state }; // the defaults of contract.json
  }

  get<K extends keyof WidgetModel>(key: K): WidgetModel[K] {
    return this.state[key];
  }

  set<K extends keyof WidgetModel>(key: K, value: WidgetModel[K]): void {
    this.state[key] = value;
    this.emit(`change:${key}`);
  }

  save_changes(): void {
    this.saved++;
  }

  on(event: string, fn: Handler): void {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)!.add(fn);
  }

  off(event?: string | null, fn?: Handler | null): void {
    if (event && fn) this.handlers.get(event)?.delete(fn);
    else if (event) this.handlers.delete(event);
  }

  send(content: any, _callbacks?: unknown, buffers: ArrayBuffer[] = []): void {
    this.sent.push({ content, buffers });
    setTimeout(() => this.reply(this, content, buffers), 0);
  }

  /** Python -> JS custom message. */
  emitCustom(content: any, buffers: DataView[] = []): void {
    this.emit("msg:custom", content, buffers);
  }

  /** Messages sent so far of one kind. */
  sentOf(kind: string): any[] {
    return this.sent.map((s) => s.content).filter((c) => c.kind === kind);
  }

  private emit(event: string, ...args: unknown[]): void {
    for (const fn of [...(this.handlers.get(event) ?? [])]) fn(...args);
  }
}

/** A tiny catalogue: ids 100..100+n-1, names "Product i", one byte "thumbnail" each. */
export function catalogue(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: 100 + i,
    name: `Product ${i}`,
    labels: { articleType: i % 2 ? "Shirts" : "Watches", baseColour: "Blue", gender: i % 3 ? "Men" : "Women" },
  }));
}

export function wire(items: ReturnType<typeof catalogue>): { items: WireItem[]; buffers: DataView[] } {
  return {
    items: items.map((it, i) => ({ ...it, thumb: i, mime: "image/jpeg" })),
    buffers: items.map((it) => new DataView(new Uint8Array([0xff, 0xd8, it.id % 256]).buffer)),
  };
}

/**
 * Python's part, following the contract, over a fake catalogue: rec(i) = the next k ids.
 * With `compare`, a second embedding ("hog") answers with the k ids before the query (or
 * the last k), and the `compared` trait lists both rows marked as Python marks them.
 */
export function fakePython(n = 60, options: { compare?: boolean } = {}) {
  const all = catalogue(n);
  const byId = new Map(all.map((it) => [it.id, it]));
  return (m: FakeModel, c: any, _buffers?: ArrayBuffer[]) => {
    if (c.kind === "page") {
      const subset = m.state.subset;
      const hits = all.filter(
        (it) => it.name.toLowerCase().includes((c.search ?? "").toLowerCase()) && (subset === null || subset.includes(it.id)),
      );
      const page = hits.slice(c.offset, c.offset + c.limit);
      const { items, buffers } = wire(page);
      m.emitCustom({ kind: "page", uuid: c.uuid, ok: true, total: hits.length, offset: c.offset, items }, buffers);
    } else if (c.kind === "recommend") {
      if (c.item_id === 999) {
        m.emitCustom({ kind: "recommend", uuid: c.uuid, ok: false, error: "unknown product id 999" });
        return;
      }
      const query = c.item_id !== undefined ? byId.get(c.item_id)! : null;
      const start = query ? query.id - 100 + 1 : 0;
      const k = m.state.k;
      const recs = all.slice(start, start + k);
      const other = options.compare ? (start > k ? all.slice(start - 1 - k, start - 1) : all.slice(n - k)) : [];
      const { items, buffers } = wire([...(query ? [query] : []), ...recs, ...other]);
      const [q, ...rest] = (query ? items : [null, ...items]) as WireItem[];
      const scored = rest.slice(0, recs.length).map((it, i) => ({ ...it, score: 1 - i / 100, rank: i + 1 }));
      const also = rest.slice(recs.length);
      m.emitCustom({ kind: "recommend", uuid: c.uuid, ok: true, selected: query?.id ?? null, query: q, items: scored, also }, buffers);
      m.set("selected", query?.id ?? null);
      m.set("recommendations", scored.map((s) => ({ id: s.id, score: s.score, rank: s.rank })));
      if (options.compare) {
        const row = (name: string, its: typeof recs) => {
          const same = its.map((it) => Object.keys(it.labels).filter((l) => l !== "gender" && query && it.labels[l as "articleType"] === query.labels[l as "articleType"]));
          const share = Object.fromEntries(["articleType", "baseColour"].map((l) => [l, same.filter((s) => s.includes(l)).length / its.length]));
          return { name, items: its.map((it, i) => ({ id: it.id, score: 0.9 - i / 100, rank: i + 1, same: same[i] })), share, error: "" };
        };
        m.set("compared", [row("products", recs), row("hog", other)]);
      }
    } else if (c.kind === "items") {
      const { items, buffers } = wire(c.ids.map((id: number) => byId.get(id)).filter(Boolean));
      m.emitCustom({ kind: "items", uuid: c.uuid, ok: true, items }, buffers);
    }
  };
}
