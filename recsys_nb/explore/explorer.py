"""The latent map to explore in a notebook: :class:`LatentExplorer`, and :func:`search_items`."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..data import Dataset
from ..errors import RecsysError
from .export import _export_path
from .figures import COLOR_COLUMNS, _hover_text, map_figure
from .images import THUMB_SIZE, ImageGrid, _auto_scale, encode_image, image_grid, thumbnails
from .projection import store_map

NAME_COLUMNS = ("productDisplayName", "name", "label")  # the first one present is the name
SEARCH_COLUMNS = ("articleType", "baseColour")  # searched with the name
HIGHLIGHT_MARKER = {"symbol": "circle-open", "size": 11, "color": "#111111", "line": {"width": 2}}
QUERY_MARKER = {
    "symbol": "star",
    "size": 18,
    "color": "#ffd400",
    "line": {"color": "#111111", "width": 1.5},
}
GRID_HINT = "lasso or box-select points to see them here"


def search_items(
    frame: pd.DataFrame, text: str, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The rows of ``frame`` that have every word of ``text`` at the start of a word of
    their id, name (``productDisplayName``), ``articleType`` or ``baseColour`` (or of
    ``columns``), in any case: ``"red shirt"`` finds "Red Checked Shirts" and "Navy
    T-Shirt, Red", not "Tshirts" nor "Tailored". No words: no rows."""
    words = re.findall(r"\w+", str(text).lower())
    if not words:
        return frame.iloc[:0]
    if columns is None:
        name = [next((c for c in NAME_COLUMNS if c in frame.columns), None)]
        columns = [c for c in (*name, *SEARCH_COLUMNS) if c is not None and c in frame.columns]
    haystack = pd.Series(frame.index.astype(str), index=frame.index)
    for column in columns:
        haystack = haystack + " " + frame[column].astype(str)
    haystack = haystack.str.lower()
    mask = np.ones(len(frame), dtype=bool)
    for word in words:
        mask &= haystack.str.contains(rf"\b{re.escape(word)}", regex=True).to_numpy()
    return frame.loc[mask]


class LatentExplorer:
    """The latent map to explore in a notebook: hover or click a point to see the product,
    lasso or box-select points to see them as an image grid, search names to find them.

    ``LatentExplorer(frame)`` with a :func:`projection_frame` (or :func:`latent_map`);
    images come from ``data`` (a Dataset), a ``store`` (its thumbnails: a MongoStore needs
    no image files) or the ``image_path`` column. :meth:`from_store` maps any store's
    vectors. Display it as the last expression of a cell.

    - :meth:`color_by` switches the colouring (``baseColour``: the products' own colours);
    - :meth:`search` (the search box) rings the products whose name matches, the rest grey;
    - :meth:`select`, :meth:`select_box` (or the lasso and box tools) select products: the
      points left out turn grey, the selection shows as a grid; :attr:`selected` is the
      selection as a table (id and catalogue columns), :meth:`export_selection_csv` (the
      button) writes it to a CSV file;
    - for other widgets: :meth:`on_select` calls back with the selected ids whenever they
      change, :attr:`selected_ids` reads them, :meth:`highlight` rings given ids (and
      stars a query) on the map.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        color: str = "articleType",
        *,
        data: Dataset | None = None,
        store=None,
        grid_columns: int = 8,
        max_grid: int = 48,
    ):
        import ipywidgets as w

        self.frame, self.data, self.store = frame, data, store
        self.grid_columns, self.max_grid = grid_columns, max_grid
        self._selected: list = []  # ids, in frame order
        self._highlighted: list = []
        self._query_id = None
        self._callbacks: list[Callable[[list], object]] = []
        self._pending: dict[int, list[int]] = {}  # a browser selection, trace by trace
        self._searching = False
        self.figure = map_figure(frame, color, widget=True)
        self.figure.add_traces(self._overlay_traces())
        self.figure.layout.width = 640
        options = [c for c in COLOR_COLUMNS if c in frame.columns] or [color]
        self.color_menu = w.Dropdown(options=options, value=color, description="colour by")
        self.color_menu.observe(lambda change: self.color_by(change["new"]), names="value")
        self.search_box = w.Text(
            placeholder="e.g. red shirt", description="search", continuous_update=False
        )
        self.search_box.observe(self._on_search_box, names="value")
        self.status = w.HTML("")
        self.preview = w.Image(format="jpeg", width=120, height=160)
        self.caption = w.HTML("hover or click a point")
        self.grid = w.Image(format="jpeg")
        self.grid_caption = w.HTML(GRID_HINT)
        self.export_button = w.Button(description="save selection as CSV", disabled=True)
        self.export_button.on_click(lambda _: self._on_export())
        self._index_traces()
        self._hook()
        panel = w.VBox(
            [
                self.color_menu,
                self.search_box,
                self.status,
                self.preview,
                self.caption,
                self.grid_caption,
                self.grid,
                self.export_button,
            ],
            layout=w.Layout(width="420px"),
        )
        self.widget = w.HBox([self.figure, panel])

    @classmethod
    def from_store(
        cls, store, color: str = "articleType", *, method: str = "umap", seed: int = 0, **kwargs
    ) -> LatentExplorer:
        """The map of a store's vectors (:func:`store_map`), pictures from its thumbnails."""
        return cls(store_map(store, method, seed), color, store=store, **kwargs)

    def _pictures(self, ids, size=THUMB_SIZE) -> np.ndarray:
        return thumbnails(ids, self.frame, self.data, size, store=self.store)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        """The live widget for JupyterLab, and a PNG of the map for readers without a kernel."""
        import base64

        from .static import figure_png

        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        bundle["image/png"] = base64.b64encode(figure_png(self.figure)).decode("ascii")
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return (
            f"LatentExplorer({len(self.frame)} points, coloured by {self.color_menu.value!r}, "
            f"{len(self._selected)} selected, {len(self._highlighted)} highlighted)"
        )

    # --- the figure's traces: one per category, then the highlight rings and the query star

    def _overlay(self, ids, name: str) -> dict:
        rows = self.frame.loc[list(ids)]
        return {
            "x": rows["x"].to_numpy(),
            "y": rows["y"].to_numpy(),
            "text": _hover_text(rows),
            "customdata": rows.index.to_numpy()[:, None],
            "name": f"{name} ({len(rows)})",
            "showlegend": len(rows) > 0,
        }

    def _overlays(self) -> list[tuple[list, str, dict]]:
        query = [] if self._query_id is None else [self._query_id]
        return [(self._highlighted, "found", HIGHLIGHT_MARKER), (query, "query", QUERY_MARKER)]

    def _overlay_traces(self) -> list:
        import plotly.graph_objects as go

        return [
            go.Scattergl(
                **self._overlay(ids, name),
                marker=marker,
                mode="markers",
                hovertemplate="%{text}<extra></extra>",
            )
            for ids, name, marker in self._overlays()
        ]

    def _index_traces(self) -> None:
        """The ids of each trace's points, from their ``customdata``."""
        self._trace_ids = []
        for trace in self.figure.data:
            custom = np.asarray(trace.customdata if len(trace.x) else [])
            first = custom.reshape(len(custom), -1)[:, 0] if len(custom) else custom
            self._trace_ids.append(first.astype(self.frame.index.dtype, copy=False))
        self._n_categories = len(self.figure.data) - 2

    def _hook(self) -> None:
        for trace in self.figure.data:
            trace.on_hover(self._on_point)
            trace.on_click(self._on_point)
            trace.on_selection(self._on_selection)
            trace.on_deselect(self._on_deselect)

    def _restyle(self) -> None:
        """Grey the points outside the selection, else outside the highlight, else none."""
        focus = self._selected or [i for ids, _, _ in self._overlays() for i in ids]
        with self.figure.batch_update():
            for t in range(self._n_categories):
                inside = pd.Index(self._trace_ids[t]).isin(focus)
                self.figure.data[t].selectedpoints = (
                    np.flatnonzero(inside).tolist() if focus else None
                )

    def _as_ids(self, ids) -> list:
        """``ids`` as the frame's ids (numbers given as text work too), frame order, known only."""
        if ids is None or isinstance(ids, str | bytes | int | np.integer):
            ids = [] if ids is None else [ids]
        given = pd.Index(list(ids))
        index = self.frame.index
        if len(given) and index.dtype.kind in "iu" and given.dtype.kind not in "iu":
            numbers = pd.to_numeric(pd.Series(given, dtype=object), errors="coerce").dropna()
            given = pd.Index(numbers.astype(np.int64))
        elif len(given) and index.dtype.kind not in "iu" and given.dtype.kind in "iu":
            given = given.astype(str)
        return index[index.isin(given)].tolist()

    # --- events from the figure and the panel

    def _on_point(self, trace, points, *_):
        if points.point_inds:
            self.show_product(self._trace_ids[points.trace_index][points.point_inds[0]])

    def _on_selection(self, trace, points, *_):
        self._pending[points.trace_index] = list(points.point_inds)
        if points.trace_index < len(self.figure.data) - 1:
            return  # plotly calls every trace in turn: act once, on the last
        ids = [i for t, inds in self._pending.items() for i in self._trace_ids[t][inds]]
        self._pending = {}
        self._set_selection(ids)

    def _on_deselect(self, trace, points, *_):
        if points.trace_index == len(self.figure.data) - 1:
            self._set_selection([])

    def _on_search_box(self, change) -> None:
        if not self._searching:
            self.search(change["new"])

    def _on_export(self) -> None:
        try:
            path = self.export_selection_csv()
        except RecsysError as exc:
            self.status.value = html.escape(str(exc))
        else:
            saved = html.escape(str(path))
            self.status.value = f"{len(self._selected)} rows saved to <code>{saved}</code>"

    # --- what code (and other widgets) call

    def show_product(self, item_id) -> None:
        """Show one product's picture and description in the side panel."""
        pic = self._pictures([item_id])[0]
        self.preview.value = encode_image(Image.fromarray(pic).resize((120, 160)))
        text = _hover_text(self.frame.loc[[item_id]])[0]
        self.caption.value = f"<b>{text}</b>"

    def color_by(self, column: str) -> None:
        """Colour the points by another metadata column (articleType, baseColour, ...);
        the selection and the highlight stay."""
        if column not in self.frame.columns:
            raise RecsysError(f"cannot colour by {column!r}: the table has {', '.join(self.frame)}")
        if column not in self.color_menu.options:
            self.color_menu.options = (*self.color_menu.options, column)
        if self.color_menu.value != column:
            self.color_menu.value = column  # its observer calls color_by(column) again
            return
        new = map_figure(self.frame, column, widget=False)
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces([*new.data, *self._overlay_traces()])
            self.figure.layout.title = new.layout.title
        self._pending = {}
        self._index_traces()
        self._hook()
        self._restyle()

    def search(self, text: str) -> pd.DataFrame:
        """Ring the products whose name, type or colour has every word of ``text`` (word
        starts, any case; see :func:`search_items`); the other points turn grey. ``""``
        clears. Returns the matching rows."""
        text = "" if text is None else str(text)
        found = search_items(self.frame, text)
        self.highlight(found.index)
        self._searching = True
        try:
            self.search_box.value = text
        finally:
            self._searching = False
        self.status.value = (
            f"{len(found)} found for <i>{html.escape(text)}</i>" if text.strip() else ""
        )
        return found

    def highlight(self, ids=(), query_id=None) -> list:
        """Ring the products ``ids`` on the map and star ``query_id`` (a query and its
        recommendations, say); the other points turn grey, unless a selection is showing
        (then it decides which are grey and the rings stay on top). Ids not on the map are
        left out; ``highlight()`` clears. The selection is not changed. Returns the ids
        ringed, in map order."""
        self._highlighted = self._as_ids(ids)
        query = self._as_ids([] if query_id is None else [query_id])
        self._query_id = query[0] if query else None
        with self.figure.batch_update():
            for trace, (ids, name, _) in zip(self.figure.data[-2:], self._overlays(), strict=True):
                trace.update(**self._overlay(ids, name))
        self._index_traces()
        self._restyle()
        return list(self._highlighted)

    @property
    def highlighted(self) -> list:
        """The ids ringed by :meth:`highlight` or :meth:`search`."""
        return list(self._highlighted)

    def on_select(self, callback: Callable[[list], object], remove: bool = False) -> Callable:
        """Call ``callback(ids)`` (the selected ids, in map order; ``[]`` when cleared) each
        time the selection changes: lasso, box, :meth:`select`, :meth:`select_box`.
        ``remove=True`` stops it. Returns ``callback``, so it works as a decorator."""
        if remove:
            self._callbacks = [c for c in self._callbacks if c != callback]
        elif callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def _set_selection(self, ids) -> None:
        new = self._as_ids(ids)
        changed = new != self._selected
        self._selected = new
        self._restyle()
        self._show_grid(new)
        self.export_button.disabled = not new
        if changed:
            for callback in list(self._callbacks):
                callback(list(new))

    def select(self, ids) -> pd.DataFrame:
        """Select products by id (as a lasso would): the others greyed in the map, the
        selection shown as a grid. ``select([])`` clears. Returns :meth:`selection`."""
        self._set_selection(ids)
        return self.selection()

    def select_box(self, x0: float, x1: float, y0: float, y1: float) -> pd.DataFrame:
        """Select the points inside a rectangle of the map (what the box tool does)."""
        f = self.frame
        inside = f["x"].between(min(x0, x1), max(x0, x1)) & f["y"].between(min(y0, y1), max(y0, y1))
        return self.select(f.index[inside])

    @property
    def selected_ids(self) -> list:
        """The selected ids, in map order."""
        return list(self._selected)

    def selection(self) -> pd.DataFrame:
        """The selected products' rows of the map (indexed by id: x, y and metadata)."""
        return self.frame.loc[self._selected]

    @property
    def selected(self) -> pd.DataFrame:
        """The selected products as a table: ``id``, then the catalogue's columns."""
        rows = self.selection().drop(columns=["x", "y"], errors="ignore")
        return rows.rename_axis("id").reset_index()

    def export_selection_csv(self, path=None) -> Path:
        """Write :attr:`selected` to a CSV file (default: ``data/exports/selection.csv``)."""
        table = self.selected
        if table.empty:
            raise RecsysError("nothing is selected: lasso or box-select points first")
        path = _export_path(path, "selection.csv")
        table.to_csv(path, index=False)
        return path

    def selection_grid(self) -> ImageGrid | None:
        """The selected products as an :class:`ImageGrid` (the first ``max_grid``)."""
        ids = self._selected[: self.max_grid]
        if not ids:
            return None
        pics = self._pictures(ids)
        return image_grid(
            pics,
            self.grid_columns,
            scale=_auto_scale(pics),
            title=f"{len(self._selected)} selected",
        )

    def _show_grid(self, ids) -> None:
        ids = list(dict.fromkeys(ids))
        if not ids:
            self.grid.value = b""
            self.grid_caption.value = GRID_HINT
            return
        shown = ids[: self.max_grid]
        pics = self._pictures(shown)
        grid = image_grid(pics, self.grid_columns, scale=_auto_scale(pics))
        self.grid.value = encode_image(grid.image)
        more = f" (first {len(shown)} shown)" if len(ids) > len(shown) else ""
        self.grid_caption.value = f"<b>{len(ids)} selected</b>{more}"
