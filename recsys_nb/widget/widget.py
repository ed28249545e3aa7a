"""``RecommenderWidget``: click a product (or drop an image), see its recommendations inline."""

from __future__ import annotations

import base64
from collections.abc import Callable

import numpy as np
import pandas as pd
import traitlets as t
from ipywidgets import CallbackDispatcher

from ..errors import RecsysError
from ..protocol import filter_mask, parse_filters
from .bundle import bundle_paths, file_contents
from .catalog import (
    FACET_COLUMNS,
    TYPE_COLUMNS,
    catalog_meta,
    names,
    plain,
    read_catalog_table,
    type_column,
)
from .catalog import facets as catalog_facets
from .compare import compared_rows, comparison_shares, comparison_table, open_compared, row_name
from .contract import MAX_K, WidgetState
from .messages import MessageHandlers
from .picture import widget_picture
from .thumbnails import Thumbnailer, thumbnailer
from .upload import decode_image

INIT_TRAITS = ("selected", "k", "search", "filters", "same_type", "page_size", "layout")
"""The traits the constructor takes as keyword arguments."""


class RecommenderWidget(MessageHandlers, WidgetState):
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

    ``compare=["cnn", "hog"]`` (model folders or names, ``"hog"``, ``"colour_hist"``,
    stores; a dict names them) shows each embedding's recommendations for the same query
    in aligned rows, marked where they share the query's articleType or baseColour
    (:mod:`recsys_nb.widget.compare`); ``w.comparison`` and ``w.comparison_shares`` read
    them. ``w.link(explorer)`` ties the widget to a :class:`~recsys_nb.LatentExplorer` map.

    From Python: ``w.selected`` (read or set), ``w.results`` (the recommendations as a
    table), ``w.search`` / ``w.filters`` / ``w.subset`` / ``w.grid_ids`` (the grid),
    ``w.same_type``, and ``w.on_select(callback)``. The synced traits are those of
    :class:`~recsys_nb.widget.contract.WidgetState`.
    """

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
        compare=None,
        **kwargs,
    ):
        unknown = set(kwargs) - set(INIT_TRAITS)
        if unknown:
            listed = ", ".join(sorted(unknown))
            raise TypeError(f"RecommenderWidget got unexpected argument(s): {listed}")
        esm, css = bundle_paths()
        self._esm = file_contents(esm)
        self._css = file_contents(css)
        store, meta = _open_store(model, catalog, store, meta)
        self.store = store
        self.meta = table = catalog_meta(store, meta)
        self._names = names(table)
        self._lower_names = self._names.str.lower()
        self._ids_text = table.index.astype(str)
        self._type_column = type_column(table)
        self._thumbnail = thumbnailer(store, table, images, thumbnails)
        self.compared_stores = open_compared(compare, store, catalog)
        """The compared embeddings' stores by row name (``{}`` without ``compare=``)."""
        self.row_names = [row_name(store), *self.compared_stores]
        self._answering = False
        self._clicked: int | None = None
        self._select_handlers = CallbackDispatcher()
        self._sent: dict[int, None] = {}  # ids sent to the view, oldest first
        self._pending_prefetch = None  # the prefetch scheduled after the last reply
        self.query_image: bytes | None = None
        """The bytes of the last dropped/chosen image (Python side only)."""
        self.last_table: pd.DataFrame | None = None
        """The last recommendations with their metadata, as ``store.recommend`` returned them."""
        super().__init__(**kwargs)
        self.facets = catalog_facets(table, FACET_COLUMNS if facets is None else facets)
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

    @property
    def results(self) -> pd.DataFrame:
        """The shown recommendations as a table (rank, id, score, metadata): :meth:`table`.
        ``w.recommendations`` is the same as the synced list of ``{id, score, rank}``."""
        return self.table()

    @property
    def comparison(self) -> pd.DataFrame:
        """With ``compare=``: every row's recommendations as one table (embedding, rank, id,
        score, ``same_articleType``, ``same_baseColour``, name)."""
        return comparison_table(self.compared, self.meta)

    @property
    def comparison_shares(self) -> pd.DataFrame:
        """With ``compare=``: per embedding, the share of its recommendations that share the
        query's articleType / baseColour."""
        return comparison_shares(self.compared)

    def link(self, explorer):
        """Tie this widget to a :class:`~recsys_nb.LatentExplorer`: a selection on the map
        fills the grid (``subset``), a product query rings itself and its recommendations
        on the map. Returns the :class:`~recsys_nb.widget.link.Link` (``.unlink()``)."""
        from .link import Link

        return Link(self, explorer)

    @property
    def grid_ids(self) -> np.ndarray:
        """The ids the grid lists (all its pages) under the current ``search`` and ``filters``."""
        return self.page_ids(self.search, self.filters)

    def on_select(self, callback: Callable[[int], object], remove: bool = False) -> None:
        """Call ``callback(item_id)`` whenever a product becomes the query: clicked in the grid,
        the recommendations or the trail, or set from Python (``w.selected = ...``); the
        recommendations are ready then (``w.results``). Image queries do not call it.
        ``remove=True`` unregisters ``callback``; several callbacks may be registered."""
        self._select_handlers.register_callback(callback, remove=remove)

    def recommend_image(self, data: bytes) -> pd.DataFrame:
        """Recommendations for an image file's bytes (a product not in the catalogue);
        :class:`~recsys_nb.widget.ImageTooLargeError` over the size limits."""
        self._set_image_query(data)
        return self.last_table

    def page_ids(self, search: str = "", filters: dict | None = None) -> np.ndarray:
        """Ids of the grid: catalogue order, within ``subset``, filtered by name substring
        and labels."""
        mask = np.ones(len(self.meta), dtype=bool)
        if self.subset is not None:
            mask &= np.asarray(self.meta.index.isin(self.subset), dtype=bool)
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

    def _repr_mimebundle_(self, **kwargs):
        """The live widget, and a PNG of its view for readers without a kernel."""
        bundle = super()._repr_mimebundle_(**kwargs)
        try:
            png = widget_picture(self)
        except (OSError, RecsysError):  # no picture is no reason to lose the widget
            return bundle
        data = bundle[0] if isinstance(bundle, tuple) else bundle  # anywidget: (data, metadata)
        data["image/png"] = base64.b64encode(png).decode("ascii")
        return bundle

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

    @t.validate("subset")
    def _check_subset(self, proposal):
        ids = proposal["value"]
        if ids is None:
            return None
        ids = [int(i) for i in ids]
        unknown = [i for i in ids if i not in self.meta.index]
        if unknown:
            raise t.TraitError(
                f"subset: {len(unknown)} id(s) not in this catalogue, e.g. {unknown[0]}"
            )
        return ids

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
            self._notify_select(change["new"])

    @t.observe("k", "filters", "same_type")
    def _on_query_settings(self, change):
        if not self._answering and (self.selected is not None or self.query_image is not None):
            self._refresh()

    @t.observe("recommendations")
    def _on_recommendations(self, change):
        if not self._answering and self.compared_stores:  # set from Python: rows go stale
            self.compared = []

    def _refresh(self) -> None:
        """Recompute the recommendations for the current query (id or image)."""
        try:
            if self.query_image is not None:
                answer = self._recommend(image=decode_image(self.query_image))
            else:
                answer = self._recommend(item_id=self.selected)
        except RecsysError as exc:
            self.error = str(exc)
            self.recommendations = []
            self.compared = []
            return
        self.error = ""
        self._set_results(*answer)

    # --- helpers -------------------------------------------------------------------

    def _notify_select(self, item_id: int) -> None:
        self._clicked = None
        self._select_handlers(item_id)

    def _set_image_query(self, data: bytes) -> pd.DataFrame:
        table, rows = self._recommend(image=decode_image(data))
        self._answering = True
        try:
            self.query_image = data
            self.selected = None
            self._set_results(table, rows)
        finally:
            self._answering = False
        return table

    def _query_filters(self, item_id) -> dict | None:
        """``filters``, and with ``same_type`` for a product query, its type (which replaces
        any filter on that column)."""
        filters = dict(self.filters)
        if self.same_type and item_id is not None:
            column = self._type_column
            if column is None:
                types = " or ".join(TYPE_COLUMNS)
                raise RecsysError(f"same type: this catalogue has no {types} column to match")
            filters[column] = [plain(self.meta.loc[item_id, column])]
        return parse_filters(filters, list(self.meta.columns), keep_empty=False) or None

    def _recommend(self, item_id=None, **query) -> tuple[pd.DataFrame, list[dict]]:
        """The store's answer to a product or ``image=`` query under the widget's ``k`` and
        filters, and with ``compare=`` every row's answer to it (else ``[]``)."""
        if item_id is not None:
            query["item_id"] = item_id
        filters = self._query_filters(item_id)
        table = self.store.recommend(**query, k=self.k, filters=filters)
        rows = compared_rows(self, table, query, filters) if self.compared_stores else []
        return table, rows

    def _set_results(self, table: pd.DataFrame, rows: list[dict]) -> None:
        """Show an answer of :meth:`_recommend`: the recommendations and the compared rows."""
        self.last_table = table
        ids, scores, ranks = (table[c].tolist() for c in ("id", "score", "rank"))
        answering, self._answering = self._answering, True
        try:
            self.recommendations = [
                {"id": int(i), "score": float(s), "rank": int(r)}
                for i, s, r in zip(ids, scores, ranks, strict=True)
            ]
            self.compared = rows
        finally:
            self._answering = answering


def _open_store(model, catalog_folder, store, meta):
    """The store (built from ``model`` and ``catalog_folder`` when not given) and the
    metadata table to use (``None``: the store's)."""
    if store is None:
        if model is None:
            raise RecsysError("give a model folder (model=...) or a store (store=...)")
        from ..recommend import MemoryStore

        store = MemoryStore.from_model(model, catalog_folder)
    elif model is not None:
        raise RecsysError("give either model (and catalog) or store, not both")
    elif meta is None and catalog_folder is not None:
        meta = read_catalog_table(catalog_folder)
    if not callable(getattr(store, "recommend", None)):
        raise RecsysError(f"{type(store).__name__} has no recommend() method")
    return store, meta
