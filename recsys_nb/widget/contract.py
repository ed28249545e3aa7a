"""The Python side of the widget's Python/JS contract: the synced traits and the messages.

The source of truth is ``contract.json`` next to this file (shipped in the package); its
TypeScript mirror is ``widgets-react/src/contract.ts``, which imports the same file.
``tests/test_widget_contract.py`` fails when :class:`WidgetState` (trait names, types,
defaults), the request handlers (kinds, request fields, reply fields) or the TypeScript
declarations disagree with it.

Synced traits (state; each side may read them; ``writer`` in contract.json says who
writes each):

``selected``          int | None. The query product's id. Set by Python after a click
                      (the ``recommend`` request) or by the user (``w.selected = 15970``):
                      recommendations are recomputed and shown. ``None`` when nothing is
                      selected or the query is an image.
``recommendations``   ``[{"id": int, "score": float, "rank": int}]``, best first. Written by
                      Python; a user may set it too, and the front end shows those ids.
``k``                 int, how many recommendations (default 10).
``search``            str, case-insensitive substring of the product name filtering the
                      grid (an all-digit query also matches ids).
``filters``           dict label -> list of values, e.g. ``{"gender": ["Women"]}``;
                      restricts both the grid and the recommendations.
``same_type``         bool: recommend only products of the query's articleType (an image
                      query has none: ignored there).
``page_size``         int, thumbnails per grid page (default 24). Python.
``facets``            dict label -> sorted values offered as filters. Python.
``error``             str, the last error, one line ("" when the last request succeeded).
``compared``          With ``compare=``: one row per embedding, the widget's own first, each
                      answering the current query: ``[{"name", "items": [{"id", "score",
                      "rank", "same": [label...]}], "share": {label: float}, "error"}]``
                      (:mod:`recsys_nb.widget.compare`); ``[]`` otherwise. Python.
``subset``            list of ids the grid is restricted to (a selection on a linked
                      ``LatentExplorer`` map), or ``None``: the whole catalogue. Python.

Messages (JS -> Python custom messages; each carries a fresh ``uuid`` that the reply
repeats, so that a view reads only the answers to its own requests):

``{"kind": "page", "uuid", "search", "filters", "offset", "limit"}``
    -> ``{"kind": "page", "uuid", "ok": true, "total", "offset", "items": [Item]}``
``{"kind": "recommend", "uuid", "item_id"}``, or with ``"image": {"name", "type"}`` and
    the image file's bytes as the one binary buffer (at most ``max_upload_bytes`` and
    ``max_upload_pixels``) -> sets ``selected`` / ``recommendations``, then
    ``{"kind": "recommend", "uuid", "ok": true, "selected", "query": Item | null,
    "items": [Item + "score", "rank"], "also": [Item]}`` (``also``: the products the
    compared rows show besides ``items``; ``[]`` without ``compare=``)
``{"kind": "items", "uuid", "ids"}`` -> ``{"kind": "items", "uuid", "ok": true, "items"}``
Any failure -> ``{"kind", "uuid", "ok": false, "error": "what went wrong"}``.

Pushes (Python -> JS, unasked, no ``uuid``):

``{"kind": "prefetch", "items": [Item]}``, after a product query: the recommendations' own
    nearest items that the view was not sent yet, with their thumbnails, so that the next
    click finds its pictures decoded.

``Item`` is ``{"id", "name", "labels": {label: value}, "thumb": int | null, "mime"}``;
``thumb`` indexes the reply's binary buffers, which hold the thumbnails as JPEG/PNG bytes
(never base64 in JSON). Only the products a reply lists get a thumbnail.
"""

from __future__ import annotations

import json
from pathlib import Path

import anywidget
import traitlets as t

CONTRACT_PATH = Path(__file__).resolve().parent / "contract.json"
CONTRACT: dict = json.loads(CONTRACT_PATH.read_text())
"""contract.json, parsed."""

LIMITS = CONTRACT["limits"]
MAX_UPLOAD_BYTES: int = LIMITS["max_upload_bytes"]
"""An image file sent to the widget is refused above this size (20 MiB)..."""
MAX_UPLOAD_PIXELS: int = LIMITS["max_upload_pixels"]
"""...or above this many pixels (40 megapixels), read from its header before decoding."""
MAX_PAGE: int = LIMITS["max_page"]
MAX_K: int = LIMITS["max_k"]
MESSAGE_KINDS: tuple[str, ...] = tuple(CONTRACT["messages"])
PUSH_KINDS: tuple[str, ...] = tuple(CONTRACT["pushes"])


class WidgetState(anywidget.AnyWidget):
    """The synced traits of :class:`~recsys_nb.widget.RecommenderWidget` (see the module
    docstring and contract.json)."""

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
    same_type = t.Bool(False).tag(sync=True)
    """Recommend only products of the query's articleType (not for an image query)."""
    page_size = t.Int(24).tag(sync=True)
    """Thumbnails per grid page."""
    facets = t.Dict(default_value={}).tag(sync=True)
    """Label -> values offered as filters (set by Python)."""
    error = t.Unicode("").tag(sync=True)
    """The last error message, "" when none."""
    compared = t.List(t.Dict(), default_value=[]).tag(sync=True)
    """With ``compare=``: each embedding's answer to the current query, the widget's first."""
    subset = t.List(t.Int(), default_value=None, allow_none=True).tag(sync=True)
    """Ids the grid is restricted to (``None``: the whole catalogue)."""


def contract_traits(cls: type = WidgetState) -> dict[str, t.TraitType]:
    """The synced traits ``cls`` adds to anywidget's own (``_esm``, ``_css``, the model's
    names, ``layout``...): those of the contract, for :class:`WidgetState` and its
    subclasses."""
    base = set(anywidget.AnyWidget.class_traits(sync=True))
    return {n: tr for n, tr in cls.class_traits(sync=True).items() if n not in base}
