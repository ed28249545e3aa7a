"""The widget linked to the latent map: ``w.link(explorer)``.

A selection on the :class:`~recsys_nb.LatentExplorer` map (lasso, box, or
``explorer.select``) fills the widget's grid (its ``subset``); a product query in the
widget (a click, or ``w.selected = ...``) rings the query and its recommendations on the
map (``explorer.highlight``). :meth:`Link.unlink` stops both.
"""

from __future__ import annotations


class Link:
    """Both directions between one widget and one explorer (see the module doc)."""

    def __init__(self, widget, explorer):
        self.widget, self.explorer = widget, explorer
        explorer.on_select(self._on_map_selection)
        widget.on_select(self._on_query)
        if explorer.selected_ids:  # a selection made before linking counts too
            self._on_map_selection(explorer.selected_ids)

    def _on_map_selection(self, ids: list) -> None:
        self.widget.subset = [int(i) for i in ids] if ids else None

    def _on_query(self, item_id: int) -> None:
        ids = [r["id"] for r in self.widget.recommendations]
        self.explorer.highlight(ids, query_id=item_id)

    def unlink(self) -> None:
        """Stop following each other (the grid's subset and the map's rings stay)."""
        self.explorer.on_select(self._on_map_selection, remove=True)
        self.widget.on_select(self._on_query, remove=True)
