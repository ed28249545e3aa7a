/**
 * The JS side of the Python/JS contract of recsys_nb.RecommenderWidget.
 *
 * The one source of truth is recsys_nb/widget/contract.json, imported here: tsc checks
 * (ContractChecks, at the end) that the trait names, message kinds and message fields
 * declared below are exactly its keys, and tests/test_widget_contract.py also compares
 * the type texts. Nothing else in src/ names a trait or a message kind.
 */
import type { AnyModel } from "@anywidget/types";
import contract from "../../recsys_nb/widget/contract.json";

/** Synced traits (contract.json says who writes each). */
export interface WidgetModel {
  /** The query product's id; null: nothing selected, or the query is an image. */
  selected: number | null;
  /** Best first; written by Python after each query. */
  recommendations: Recommendation[];
  /** How many recommendations. */
  k: number;
  /** Case-insensitive substring of the product name (digits also match ids). */
  search: string;
  /** Label -> allowed values; restricts the grid and the recommendations. */
  filters: Record<string, string[]>;
  /** Recommend only products of the query's articleType (not for an image query). */
  same_type: boolean;
  /** Thumbnails per grid page. */
  page_size: number;
  /** Label -> values offered as filters (read-only here). */
  facets: Record<string, string[]>;
  /** The last error, "" when none (read-only here). */
  error: string;
  /** With compare=: each embedding's answer to the current query, the widget's own first. */
  compared: CompareRow[];
  /** Ids the grid is restricted to (a linked map's selection); null: the whole catalogue. */
  subset: number[] | null;
}

export interface Recommendation {
  id: number;
  score: number | null;
  rank: number;
}

/** One embedding's answer in the comparison view. */
export interface CompareRow {
  name: string;
  items: ComparedItem[];
  /** Label -> share of the items that have the query's value. */
  share: Record<string, number>;
  /** Why this embedding could not answer, "" when it did. */
  error: string;
}

/** A recommendation of one row, with the labels it shares with the query. */
export interface ComparedItem {
  id: number;
  score: number | null;
  rank: number;
  same: string[];
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

export type PageRequest = {
  kind: "page";
  search: string;
  filters: Record<string, string[]>;
  offset: number;
  limit: number;
};
/** A product's id, or an image file (its bytes travel as the one binary buffer). */
export type RecommendRequest = { kind: "recommend"; item_id: number } | { kind: "recommend"; image: { name: string; type: string } };
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
  /** The products the compared rows show besides `items`. */
  also: WireItem[];
}
export interface ItemsReply {
  items: WireItem[];
}
/** The reply of each message kind. */
export interface Replies {
  page: PageReply;
  recommend: RecommendReply;
  items: ItemsReply;
}
export type ReplyFor<R extends Request> = Replies[R["kind"]];

/** Sent by Python unasked: products the next click is likely to show, with thumbnails. */
export interface PrefetchPush {
  kind: "prefetch";
  items: WireItem[];
}
export type Push = PrefetchPush;

/** What every reply carries besides its fields. */
export interface Envelope {
  kind: string;
  uuid: string;
  ok: boolean;
  error?: string;
}

export type Model = AnyModel<WidgetModel>;

/** Size limits, shared with Python. */
export const LIMITS: { max_upload_bytes: number; max_upload_pixels: number; max_page: number; max_k: number } = contract.limits;

/** The traits' defaults, as Python declares them. */
export const DEFAULTS = Object.fromEntries(
  Object.entries(contract.traits).map(([name, spec]) => [name, spec.default]),
) as unknown as WidgetModel;

/** What a compared recommendation shares with the query (a label), as a reader says it. */
export const SAME_WORDS: Record<string, string> = contract.same_words;

/** Labels shown under a recommendation, in this order. */
export const SHOWN_LABELS = ["articleType", "baseColour", "gender", "masterCategory", "label"];

// --- compile-time checks against contract.json -------------------------------------------

type Schema = typeof contract;
type Messages = Schema["messages"];
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
/** Every key of every member of a union. */
type KeysOf<T> = T extends unknown ? keyof T : never;
type Fields<R> = Exclude<KeysOf<R>, "kind">;

export type ContractChecks = [
  Assert<Equal<keyof WidgetModel, keyof Schema["traits"]>>,
  Assert<Equal<Request["kind"], keyof Messages>>,
  Assert<Equal<keyof Replies, keyof Messages>>,
  Assert<Equal<Fields<PageRequest>, keyof Messages["page"]["request"]>>,
  Assert<Equal<Fields<RecommendRequest>, keyof Messages["recommend"]["request"]>>,
  Assert<Equal<Fields<ItemsRequest>, keyof Messages["items"]["request"]>>,
  Assert<Equal<keyof PageReply, keyof Messages["page"]["reply"]>>,
  Assert<Equal<keyof RecommendReply, keyof Messages["recommend"]["reply"]>>,
  Assert<Equal<keyof ItemsReply, keyof Messages["items"]["reply"]>>,
  Assert<Equal<Push["kind"], keyof Schema["pushes"]>>,
  Assert<Equal<Fields<PrefetchPush>, keyof Schema["pushes"]["prefetch"]["message"]>>,
  Assert<Equal<keyof WireItem, keyof Schema["wire_item"]>>,
  Assert<Equal<keyof Recommendation, keyof Schema["recommendation"]>>,
  Assert<Equal<keyof CompareRow, keyof Schema["compare_row"]>>,
  Assert<Equal<keyof ComparedItem, keyof Schema["compared_item"]>>,
  Assert<Equal<keyof Envelope, keyof Schema["envelope"]["reply"]>>,
];
