import { decodeItems, type Item } from "./request";
import type { WireItem } from "./contract";

/**
 * Products this view has received (name, labels, thumbnail object URL), by id.
 * UI-only: never synced with Python. Bounded; evicted thumbnails are revoked.
 */
export class ItemCache {
  private items = new Map<number, Item>();
  private loading = new Set<number>();

  constructor(private readonly limit = 2000) {}

  get(id: number): Item | undefined {
    return this.items.get(id);
  }

  has(id: number): boolean {
    return this.items.has(id);
  }

  /** Store a reply's items (see decodeItems: thumbnails already held are kept). */
  receive(items: WireItem[], buffers: DataView[]): Item[] {
    const decoded = decodeItems(items, buffers, (id) => this.items.get(id));
    this.putAll(decoded);
    return decoded;
  }

  putAll(items: Item[]): void {
    for (const item of items) {
      const old = this.items.get(item.id);
      if (old?.src && old.src !== item.src) URL.revokeObjectURL(old.src);
      this.items.delete(item.id); // re-insert: most recently seen last
      this.items.set(item.id, item);
    }
    while (this.items.size > this.limit) {
      const [id, oldest] = this.items.entries().next().value as [number, Item];
      if (oldest.src) URL.revokeObjectURL(oldest.src);
      this.items.delete(id);
    }
  }

  isLoading(id: number): boolean {
    return this.loading.has(id);
  }

  markLoading(ids: number[]): void {
    ids.forEach((id) => this.loading.add(id));
  }

  doneLoading(ids: number[]): void {
    ids.forEach((id) => this.loading.delete(id));
  }

  clear(): void {
    for (const item of this.items.values()) if (item.src) URL.revokeObjectURL(item.src);
    this.items.clear();
  }
}
