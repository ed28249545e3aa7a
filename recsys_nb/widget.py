"""The notebook widget: click a product, see its recommendations inline.

``RecommenderWidget`` is an ``anywidget.AnyWidget``. Its React front end lives in
``widgets-react/`` and is built into ``recsys_nb/static/widget.js`` + ``widget.css``
(``make widget``, or ``cd widgets-react && npm ci && npm run build``).

The Python/JS contract is kept in two places only: the synced traits and the message
kinds documented in this file, and their mirror in ``widgets-react/src/contract.ts``.

Synced traits (state; each side may read them, the writer is noted):

``selected``          int | None. The query product's id. Written by Python (after a
                      click, the widget's request handler sets it) or by the user
                      (``w.selected = 15970``): recommendations are recomputed and shown.
                      ``None`` when nothing is selected or the query is a dropped image.
``recommendations``   list of ``{"id": int, "score": float, "rank": int}``, best first.
                      Written by Python; a user may set it too (say, from another
                      store), and the front end then shows exactly those ids.
``k``                 int, how many recommendations (default 10). Python and JS.
``search``            str, case-insensitive substring of the product name filtering
                      the grid (an all-digit query also matches ids). Python and JS.
``filters``           dict label -> list of values, e.g. ``{"gender": ["Women"]}``;
                      restricts both the grid and the recommendations. Python and JS.
``page_size``         int, thumbnails per grid page (default 24). Python.
``facets``            dict label -> sorted values: the labels the front end offers as
                      filters. Written by Python at start-up.
``error``             str, the last error ("" when the last request succeeded). Python.

Messages (JS -> Python, anywidget custom messages; each carries a fresh ``uuid`` that
the reply repeats, so that a view only reads the answers to its own requests):

``{"kind": "page", "uuid", "search", "filters", "offset", "limit"}``
    -> ``{"kind": "page", "uuid", "ok": true, "total", "offset", "items": [Item]}``
``{"kind": "recommend", "uuid", "item_id"}``, or with ``"image": {"name", "type"}`` and
    the image file's bytes as the one binary buffer (a product not in the catalogue)
    -> sets ``selected`` / ``recommendations``, then
    ``{"kind": "recommend", "uuid", "ok": true, "selected", "query": Item | null,
    "items": [Item + "score", "rank"]}``
``{"kind": "items", "uuid", "ids"}``
    -> ``{"kind": "items", "uuid", "ok": true, "items": [Item]}``
Any failure -> ``{"kind", "uuid", "ok": false, "error": "what went wrong"}``.

``Item`` is ``{"id", "name", "labels": {label: value}, "thumb": int | null, "mime"}``;
``thumb`` indexes the reply's binary buffers, which hold the thumbnails as JPEG/PNG
bytes (never base64 in JSON). Only the products a reply lists, that is what is on
screen, get a thumbnail.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets as t
from PIL import Image, UnidentifiedImageError

from .errors import RecsysError
from .protocol import THUMB_MAX_BYTES, THUMB_SIZE, filter_mask, parse_filters, thumbnail_from_file

STATIC_DIR = Path(__file__).resolve().parent / "static"
BUNDLE_FILES = ("widget.js", "widget.css")
HOW_TO_BUILD = (
    "build it with `make widget`, or `cd widgets-react && npm ci && npm run build` "
    "(Node 20+; it writes recsys_nb/static/widget.js and widget.css)"
)

NAME_COLUMNS = ("productDisplayName", "name", "label")
LABEL_COLUMNS = ("gender", "masterCategory", "subCategory", "articleType", "baseColour", "label")
FACET_COLUMNS = ("gender", "masterCategory", "articleType", "baseColour", "label")
MAX_FACET_VALUES = 300
MAX_PAGE = 200
MAX_K = 100
MAX_UPLOAD_BYTES = 20 * 2**20
THUMB_CACHE = 4096  # thumbnails kept per widget
__all__ = ["THUMB_MAX_BYTES", "THUMB_SIZE", "RecommenderWidget", "bundle_paths"]

Thumbnailer = Callable[[Any], "tuple[bytes, str] | None"]


def bundle_paths(static_dir: Path | None = None) -> tuple[Path, Path]:
    """The built ``widget.js`` and ``widget.css``; a clear error if they are missing."""
    static_dir = STATIC_DIR if static_dir is None else Path(static_dir)
    paths = tuple(static_dir / name for name in BUNDLE_FILES)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise RecsysError(
            f"the widget's front end is not built ({', '.join(map(str, missing))} missing): "
            + HOW_TO_BUILD
        )
    return paths  # type: ignore[return-value]


class RecommenderWidget(anywidget.AnyWidget):
    """A product grid; click (or drop an image) to see recommendations inline.

    ``RecommenderWidget(model="models/products", catalog=folder)`` builds a
    :class:`~recsys_nb.MemoryStore`; ``RecommenderWidget(store=store)`` uses any store with
    the read interface of :class:`recsys_nb.protocol.StoreBase` (``MemoryStore``, or a
    ``MongoStore`` by URI alone: the catalogue's columns and thumbnails come from the
    database). Other objects need ``recommend(item_id=None, *, vector=None, image=None, k,
    filters)`` and a ``meta`` table indexed by id, or ``catalog=folder`` (its styles.csv is
    read) or ``meta=``. ``thumbnails`` is an optional ``id -> (bytes, mime) | None``; by
    default the store's ``thumbnails(ids)``, else the ``image_path`` column of the
    metadata, else ``images`` (an array aligned with ``meta``, encoded as PNG).
    """

    selected = t.Int(None, allow_none=True).tag(sync=True)
    """The query product's id (``None``: nothing selected, or an image query)."""
    recommendations = t.List(t.Dict(), default_value=[]).tag(sync=True)
    """``[{"id", "score", "rank"}]``, best first."""
    k = t.Int(10).tag(sync=True)
    """How many recommendations to show (1..100)."""
    search = t.Unicode("").tag(sync=True)
    """Substring of the product name (case-insensitive) filtering the grid."""
    filters = t.Dict(default_value={}).tag(sync=True)
    """Label -> allowed values; restricts the grid and the recommendations."""
    page_size = t.Int(24).tag(sync=True)
    """Thumbnails per grid page."""
    facets = t.Dict(default_value={}).tag(sync=True)
    """Label -> values offered as filters (set by Python)."""
    error = t.Unicode("").tag(sync=True)
    """The last error message, "" when none."""

    def __init__(
        self,
        model=None,
        catalog=None,
        *,
        store=None,
        meta: pd.DataFrame | None = None,
        images: np.ndarray | None = None,
        thumbnails: Thumbnailer | None = None,
        facets: tuple[str, ...] | None = None,
        **kwargs,
    ):
        unknown = set(kwargs) - {"selected", "k", "search", "filters", "page_size", "layout"}
        if unknown:
            names = ", ".join(sorted(unknown))
            raise TypeError(f"RecommenderWidget got unexpected argument(s): {names}")
        esm, css = bundle_paths()
        self._esm = _file_contents(esm)
        self._css = _file_contents(css)
        if store is None:
            if model is None:
                raise RecsysError("give a model folder (model=...) or a store (store=...)")
            from .recommend import MemoryStore

            store = MemoryStore.from_model(model, catalog)
        elif model is not None:
            raise RecsysError("give either model (and catalog) or store, not both")
        elif meta is None and catalog is not None:
            meta = _read_catalog_table(catalog)
        if not callable(getattr(store, "recommend", None)):
            raise RecsysError(f"{type(store).__name__} has no recommend() method")
        self.store = store
        self.meta = _catalog_meta(store, meta)
        self._names = _names(self.meta)
        self._lower_names = self._names.str.lower()
        self._ids_text = self.meta.index.astype(str)
        self._thumbnail = _thumbnailer(store, self.meta, images, thumbnails)
        self._answering = False
        self.query_image: bytes | None = None
        """The bytes of the last dropped/chosen image (Python side only)."""
        self.last_table: pd.DataFrame | None = None
        """The last recommendations with their metadata, as ``store.recommend`` returned them."""
        super().__init__(**kwargs)
        self.facets = _facets(self.meta, FACET_COLUMNS if facets is None else facets)
        self.on_msg(self._on_message)

    # --- Python API ---------------------------------------------------------------

    def table(self) -> pd.DataFrame:
        """The shown recommendations with rank, id, score and metadata."""
        rows = self.recommendations
        ids = [r["id"] for r in rows]
        table = pd.DataFrame(
            {
                "rank": [r.get("rank", i + 1) for i, r in enumerate(rows)],
                "id": ids,
                "score": [r.get("score") for r in rows],
            }
        )
        meta = self.meta.reindex(ids).reset_index(drop=True)
        return pd.concat([table, meta.drop(columns=["image_path"], errors="ignore")], axis=1)

    def recommend_image(self, data: bytes) -> pd.DataFrame:
        """Recommendations for an image file's bytes (a product not in the catalogue)."""
        self._set_image_query(data)
        return self.last_table

    # --- traits -------------------------------------------------------------------

    @t.validate("selected")
    def _check_selected(self, proposal):
        value = proposal["value"]
        if value is None:
            return None
        value = int(value)
        if value not in self.meta.index:
            raise t.TraitError(
                f"unknown product id {value}: not in this catalogue ({len(self.meta)} items)"
            )
        return value

    @t.validate("k")
    def _check_k(self, proposal):
        k = int(proposal["value"])
        if not 1 <= k <= MAX_K:
            raise t.TraitError(f"k must be between 1 and {MAX_K}, got {k}")
        return k

    @t.validate("recommendations")
    def _check_recommendations(self, proposal):
        rows = []
        for rank, row in enumerate(proposal["value"], start=1):
            if not isinstance(row, dict) or "id" not in row:
                raise t.TraitError("each recommendation is a dict with at least an 'id'")
            score = row.get("score")
            rows.append(
                {
                    "id": int(row["id"]),
                    "score": None if score is None else float(score),
                    "rank": int(row.get("rank", rank)),
                }
            )
        return rows

    @t.validate("filters")
    def _check_filters(self, proposal):
        try:
            return parse_filters(proposal["value"], list(self.meta.columns), keep_empty=False)
        except RecsysError as exc:
            raise t.TraitError(str(exc)) from None

    @t.observe("selected")
    def _on_selected(self, change):
        if self._answering:
            return
        self.query_image = None
        if change["new"] is None:
            self.last_table = None
            self.recommendations = []
        else:
            self._refresh()

    @t.observe("k", "filters")
    def _on_query_settings(self, change):
        if not self._answering and (self.selected is not None or self.query_image is not None):
            self._refresh()

    def _refresh(self) -> None:
        """Recompute the recommendations for the current query (id or image)."""
        try:
            if self.query_image is not None:
                table = self._recommend(image=_decode_image(self.query_image))
            else:
                table = self._recommend(item_id=self.selected)
        except RecsysError as exc:
            self.error = str(exc)
            self.recommendations = []
            return
        self.error = ""
        self._set_results(table)

    # --- requests from the front end ----------------------------------------------

    def _on_message(self, _widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("kind") not in _HANDLERS:
            return
        kind, uuid = content["kind"], content.get("uuid")
        out_buffers: list[bytes] = []
        # The reply is sent inside hold_sync: it (and its thumbnails) reaches the front
        # end before the trait changes, so new recommendations paint in one go.
        with self.hold_sync():
            try:
                reply = _HANDLERS[kind](self, content, list(buffers or []), out_buffers)
            except (RecsysError, ValueError, TypeError, KeyError, t.TraitError) as exc:
                message = str(exc) if isinstance(exc, RecsysError) else f"bad {kind} request: {exc}"
                self.error = message
                self.send({"kind": kind, "uuid": uuid, "ok": False, "error": message})
                return
            self.send({"kind": kind, "uuid": uuid, "ok": True, **reply}, out_buffers)

    def _handle_page(self, content, _buffers, out) -> dict:
        search = str(content.get("search", self.search))
        filters = self._check_filters({"value": content.get("filters", self.filters)})
        offset = max(0, int(content.get("offset", 0)))
        limit = min(MAX_PAGE, max(1, int(content.get("limit", self.page_size))))
        ids = self.page_ids(search, filters)
        return {
            "total": len(ids),
            "offset": offset,
            "items": self._items(ids[offset : offset + limit], out),
        }

    def page_ids(self, search: str = "", filters: dict | None = None) -> np.ndarray:
        """Ids of the grid: catalogue order, filtered by name substring and labels."""
        mask = np.ones(len(self.meta), dtype=bool)
        needle = search.strip().lower()
        if needle:
            hit = np.array(self._lower_names.str.contains(needle, regex=False), dtype=bool)
            if needle.isdigit():
                hit |= np.asarray(self._ids_text.str.startswith(needle), dtype=bool)
            mask &= hit
        wanted = filter_mask(self.meta, filters)
        if wanted is not None:
            mask &= wanted
        return self.meta.index.to_numpy()[mask]

    def _handle_recommend(self, content, buffers, out) -> dict:
        if content.get("image") is not None:
            if len(buffers) != 1:
                raise RecsysError("an image request carries the file as one binary buffer")
            table = self._set_image_query(bytes(buffers[0]))
            query = None
        else:
            item_id = self._check_selected({"value": content["item_id"]})
            table = self._recommend(item_id=item_id)
            self._answering = True
            try:
                self.query_image = None
                self.selected = item_id
                self._set_results(table)
            finally:
                self._answering = False
            query = self._items([item_id], out)[0]
        self.error = ""
        rows = list(table.itertuples())
        items = [
            {**item, "score": float(row.score), "rank": int(row.rank)}
            for item, row in zip(self._items([int(r.id) for r in rows], out), rows, strict=True)
        ]
        return {"selected": self.selected, "query": query, "items": items}

    def _handle_items(self, content, _buffers, out) -> dict:
        ids = [int(i) for i in content.get("ids", [])][: MAX_PAGE + MAX_K]
        return {"items": self._items([i for i in ids if i in self.meta.index], out)}

    # --- helpers -------------------------------------------------------------------

    def _set_image_query(self, data: bytes) -> pd.DataFrame:
        table = self._recommend(image=_decode_image(data))
        self._answering = True
        try:
            self.query_image = data
            self.selected = None
            self._set_results(table)
        finally:
            self._answering = False
        return table

    def _recommend(self, **query) -> pd.DataFrame:
        return self.store.recommend(**query, k=self.k, filters=self.filters or None)

    def _set_results(self, table: pd.DataFrame) -> None:
        self.last_table = table
        self.recommendations = [
            {"id": int(r.id), "score": float(r.score), "rank": int(r.rank)}
            for r in table.itertuples()
        ]

    def _items(self, ids, out: list) -> list[dict]:
        """The items of a reply; their thumbnails appended to ``out`` (fetched in one go)."""
        ids = [int(i) for i in ids]
        thumbs = self._thumbnail.many(ids)
        columns = [c for c in LABEL_COLUMNS if c in self.meta.columns and c != "name"]
        items = []
        for item_id in ids:
            row = self.meta.loc[item_id]
            item = {
                "id": item_id,
                "name": str(self._names.loc[item_id]),
                "labels": {c: _plain(row[c]) for c in columns},
                "thumb": None,
                "mime": None,
            }
            thumb = thumbs.get(item_id)
            if thumb is not None:
                item["thumb"], item["mime"] = len(out), thumb[1]
                out.append(thumb[0])
            items.append(item)
        return items


_HANDLERS = {
    "page": RecommenderWidget._handle_page,
    "recommend": RecommenderWidget._handle_recommend,
    "items": RecommenderWidget._handle_items,
}


def _file_contents(path: Path):
    """The file for anywidget: watched and hot-reloaded when ANYWIDGET_HMR=1."""
    if os.environ.get("ANYWIDGET_HMR") == "1":
        from anywidget._util import try_file_contents

        return try_file_contents(path)
    return path.read_text()


def _catalog_meta(store, meta) -> pd.DataFrame:
    if meta is None:
        meta = getattr(store, "meta", None)
    if not isinstance(meta, pd.DataFrame):
        raise RecsysError(
            "the widget needs the catalogue's metadata: a store with a .meta DataFrame "
            "indexed by id, or meta=..."
        )
    ids = getattr(store, "ids", None)
    if ids is not None and len(meta.columns) == 0 and len(meta) == 0:
        meta = pd.DataFrame(index=pd.Index(ids, name="id"))
    return meta


def _read_catalog_table(folder) -> pd.DataFrame:
    """A catalogue folder's styles.csv indexed by id, with image paths (no decoding)."""
    folder = Path(folder)
    try:
        meta = pd.read_csv(folder / "styles.csv", keep_default_na=False, na_values=[])
    except (OSError, ValueError) as exc:
        table = folder / "styles.csv"
        raise RecsysError(f"cannot read the catalogue table {table}: {exc}") from exc
    meta = meta.set_index("id")
    meta["image_path"] = [str(folder / "images" / f"{i}.jpg") for i in meta.index]
    return meta


def _names(meta: pd.DataFrame) -> pd.Series:
    for column in NAME_COLUMNS:
        if column in meta.columns:
            return meta[column].astype(str)
    return pd.Series([f"item {i}" for i in meta.index], index=meta.index)


def _facets(meta: pd.DataFrame, columns) -> dict:
    out = {}
    for column in columns:
        if column in meta.columns:
            values = sorted({str(v) for v in meta[column].unique() if str(v)})
            if 1 < len(values) <= MAX_FACET_VALUES:
                out[column] = values
    return out


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _decode_image(data: bytes) -> np.ndarray:
    if len(data) > MAX_UPLOAD_BYTES:
        raise RecsysError(f"image file too large ({len(data) >> 20} MB; at most 20 MB)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise RecsysError(f"not an image file the widget can read: {exc}") from exc


class _Thumbnails:
    """Thumbnails by id, kept (up to :data:`THUMB_CACHE`) once fetched; ``many`` fetches the
    missing ones of a reply in one call (one database query for a MongoStore)."""

    def __init__(self, fetch_many: Callable[[list], dict]):
        self._fetch_many = fetch_many
        self._cache: dict = {}

    def __call__(self, item_id):
        return self.many([item_id]).get(item_id)

    def many(self, ids) -> dict:
        missing = [i for i in dict.fromkeys(ids) if i not in self._cache]
        if missing:
            found = self._fetch_many(missing)
            if len(self._cache) + len(missing) > THUMB_CACHE:
                self._cache.clear()
            for i in missing:
                self._cache[i] = found.get(i)
        return {i: self._cache[i] for i in ids if self._cache.get(i) is not None}


def _png(a: np.ndarray) -> tuple[bytes, str]:
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    img = Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), "image/png"


def _thumbnailer(store, meta: pd.DataFrame, images, custom) -> _Thumbnails:
    """Where thumbnails come from: ``custom``, the store's ``thumbnails(ids)``, the
    ``image_path`` column, or ``images``."""
    if custom is not None:
        return _Thumbnails(lambda ids: {i: custom(i) for i in ids})
    if callable(getattr(store, "thumbnails", None)):
        return _Thumbnails(store.thumbnails)
    if "image_path" in meta.columns:
        paths = meta["image_path"]
        return _Thumbnails(lambda ids: {i: thumbnail_from_file(paths.loc[i]) for i in ids})
    if images is not None:
        position = pd.Series(np.arange(len(meta)), index=meta.index)
        return _Thumbnails(
            lambda ids: {i: _png(np.asarray(images[int(position.loc[i])])) for i in ids}
        )
    return _Thumbnails(lambda ids: {})
