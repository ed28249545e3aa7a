"""The widget's answers to the front end's requests (the messages of contract.json).

:class:`MessageHandlers` is a mixin of :class:`~recsys_nb.widget.RecommenderWidget`: one
``_handle_<kind>(content, buffers, out)`` method per message kind (:data:`HANDLERS`),
returning the reply's fields; thumbnails go to ``out``, the reply's binary buffers.
"""

from __future__ import annotations

import asyncio

import traitlets as t

from ..errors import RecsysError
from .catalog import LABEL_COLUMNS, plain
from .contract import MAX_K, MAX_PAGE, MESSAGE_KINDS
from .upload import check_upload_bytes

HANDLERS = {kind: f"_handle_{kind}" for kind in MESSAGE_KINDS}
"""Message kind -> the method that answers it."""

PREFETCH_DELAY_S = 0.02
"""How long after a reply the thumbnails likely next are sent."""
PREFETCH_MAX = 100
"""Thumbnails sent ahead after one query, at most..."""
PREFETCH_STEP = 10
"""...this many per push (the kernel answers a new request between two)."""
SENT_REMEMBERED = 1500
"""Products remembered as sent to the view (its cache keeps 2000): not sent ahead again."""


class MessageHandlers:
    """Request handling for the widget (see the module docstring)."""

    def _on_message(self, _widget, content, buffers) -> None:
        if not isinstance(content, dict) or content.get("kind") not in HANDLERS:
            return
        kind, uuid = content["kind"], content.get("uuid")
        if self._pending_prefetch is not None:  # a new request: what was ahead is stale
            self._pending_prefetch.cancel()
            self._pending_prefetch = None
        out_buffers: list[bytes] = []
        self._clicked = None
        # The reply is sent inside hold_sync: it (and its thumbnails) reaches the front
        # end before the trait changes, so new recommendations paint in one go.
        with self.hold_sync():
            try:
                handler = getattr(self, HANDLERS[kind])
                reply = handler(content, list(buffers or []), out_buffers)
            except (RecsysError, ValueError, TypeError, KeyError, t.TraitError) as exc:
                message = str(exc) if isinstance(exc, RecsysError) else f"bad {kind} request: {exc}"
                self.error = message
                self.send({"kind": kind, "uuid": uuid, "ok": False, "error": message})
                return
            self.send({"kind": kind, "uuid": uuid, "ok": True, **reply}, out_buffers)
        if self._clicked is not None:  # on_select callbacks run once the view has its answer
            self._notify_select(self._clicked)
        if kind == "recommend" and self.recommendations:
            self._prefetch_soon([r["id"] for r in self.recommendations])

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

    def _handle_recommend(self, content, buffers, out) -> dict:
        if content.get("image") is not None:
            if len(buffers) != 1:
                raise RecsysError("an image request carries the file as one binary buffer")
            check_upload_bytes(memoryview(buffers[0]).nbytes)
            table = self._set_image_query(bytes(buffers[0]))
            query = None
        else:
            item_id = self._check_selected({"value": content["item_id"]})
            table, rows = self._recommend(item_id=item_id)
            self._answering = True
            try:
                self.query_image = None
                self.selected = item_id
                self._set_results(table, rows)
            finally:
                self._answering = False
            self._clicked = item_id
            query = self._items([item_id], out)[0]
        self.error = ""
        ids, scores, ranks = (table[c].tolist() for c in ("id", "score", "rank"))
        items = [
            {**item, "score": float(score), "rank": int(rank)}
            for item, score, rank in zip(self._items(ids, out), scores, ranks, strict=True)
        ]
        shown = {int(i) for i in ids} | ({self.selected} if self.selected is not None else set())
        others = [i["id"] for row in self.compared[1:] for i in row["items"]]
        also = list(dict.fromkeys(i for i in others if i not in shown))
        return {
            "selected": self.selected,
            "query": query,
            "items": items,
            "also": self._items(also, out),
        }

    def _handle_items(self, content, _buffers, out) -> dict:
        ids = [int(i) for i in content.get("ids", [])][: MAX_PAGE + MAX_K]
        return {"items": self._items([i for i in ids if i in self.meta.index], out)}

    def _prefetch_soon(self, ids) -> None:
        """Send, ahead of the next click, the thumbnails it is likely to need: those of the
        recommendations' own nearest items that the view has not been sent yet, as
        ``prefetch`` pushes (the view keeps them decoded). Stores without a batched
        ``neighbours`` search get none.

        In a kernel this runs on its event loop once the reply has left (the kernel sends
        from another thread, which this work would hold up), a few items per step so that
        the next request is answered in between; that request cancels the rest. Without a
        running loop (tests, scripts) it runs at once."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            todo = self._ahead(ids)
            while todo:
                todo = self._send_ahead(todo)
            return
        self._pending_prefetch = loop.call_later(PREFETCH_DELAY_S, self._prefetch_step, ids)

    def _prefetch_step(self, ids, todo=None) -> None:
        todo = self._send_ahead(self._ahead(ids) if todo is None else todo)
        self._pending_prefetch = None
        if todo:
            loop = asyncio.get_running_loop()
            self._pending_prefetch = loop.call_soon(self._prefetch_step, ids, todo)

    def _ahead(self, ids) -> list[int]:
        """The recommendations' nearest items not sent yet, nearest first."""
        neighbours = getattr(self.store, "neighbours", None)
        if neighbours is None:
            return []
        try:
            near = neighbours(ids, self.k, self._query_filters(None))
        except RecsysError:
            return []
        return [int(i) for i in near if int(i) not in self._sent][:PREFETCH_MAX]

    def _send_ahead(self, todo: list[int]) -> list[int]:
        """One ``prefetch`` push of the first items of ``todo``; returns the rest."""
        out: list[bytes] = []
        items = self._items(todo[:PREFETCH_STEP], out)
        if items:
            self.send({"kind": "prefetch", "items": items}, out)
        return todo[PREFETCH_STEP:]

    def _labels_by_row(self):
        """The label columns, their values and the names as arrays by row of ``meta`` (a
        reply's items are read by position: pandas' label lookups cost milliseconds)."""
        cached = getattr(self, "_label_arrays", None)
        if cached is None or cached[0] is not self.meta:
            columns = [c for c in LABEL_COLUMNS if c in self.meta.columns and c != "name"]
            values = self.meta[columns].to_numpy(dtype=object)
            cached = (self.meta, columns, values, self._names.to_numpy(dtype=object))
            self._label_arrays = cached
        return cached[1:]

    def _items(self, ids, out: list) -> list[dict]:
        """The items of a reply; their thumbnails appended to ``out`` (fetched in one go)."""
        ids = [int(i) for i in ids]
        thumbs = self._thumbnail.many(ids)
        columns, labels, all_names = self._labels_by_row()
        rows = self.meta.index.get_indexer(ids)
        names, rows = all_names[rows].tolist(), labels[rows].tolist()
        items = []
        for item_id, name, row in zip(ids, names, rows, strict=True):
            item = {
                "id": item_id,
                "name": str(name),
                "labels": {c: plain(v) for c, v in zip(columns, row, strict=True)},
                "thumb": None,
                "mime": None,
            }
            thumb = thumbs.get(item_id)
            if thumb is not None:
                item["thumb"], item["mime"] = len(out), thumb[1]
                out.append(thumb[0])
            items.append(item)
            self._sent.pop(item_id, None)
            self._sent[item_id] = None
        while len(self._sent) > SENT_REMEMBERED:
            del self._sent[next(iter(self._sent))]
        return items
