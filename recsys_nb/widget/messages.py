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
"""Thumbnails sent ahead after one query, at most."""
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
            table = self._recommend(item_id=item_id)
            self._answering = True
            try:
                self.query_image = None
                self.selected = item_id
                self._set_results(table)
            finally:
                self._answering = False
            self._clicked = item_id
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

    def _prefetch_soon(self, ids) -> None:
        """:meth:`_prefetch` once the reply has left: a little later on the kernel's event
        loop (the kernel sends messages from another thread, which the prefetch's work
        would hold up), cancelled by the next request; at once without a running loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._prefetch(ids)
            return
        self._pending_prefetch = loop.call_later(PREFETCH_DELAY_S, self._prefetch, ids)

    def _prefetch(self, ids) -> None:
        """Send, ahead of the next click, the thumbnails it is likely to need: those of the
        recommendations' own nearest items that the view has not been sent yet (a
        ``prefetch`` push; the view keeps them decoded). Stores without a batched
        ``neighbours`` search get none."""
        self._pending_prefetch = None
        neighbours = getattr(self.store, "neighbours", None)
        if neighbours is None:
            return
        try:
            near = neighbours(ids, self.k, self._query_filters(None))
        except RecsysError:
            return
        new = [int(i) for i in near if int(i) not in self._sent][:PREFETCH_MAX]
        if new:
            out: list[bytes] = []
            self.send({"kind": "prefetch", "items": self._items(new, out)}, out)

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
                "labels": {c: plain(row[c]) for c in columns},
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
