"""Standalone HTML files (plotly.js and every picture embedded, for offline use) and
the folder they go to by default (``data/exports/``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import settings
from ..data import Dataset
from .figures import map_figure, recommendation_figure
from .images import data_uri, thumbnails

_HOVER_IMAGE_JS = """
var gd = document.getElementById('{plot_id}');
var box = document.createElement('div');
box.style.cssText = 'position:fixed;top:12px;right:12px;background:#fff;border:1px solid #ccc;'
  + 'padding:6px;font:12px sans-serif;max-width:180px;display:none;z-index:10';
var img = document.createElement('img');
img.style.cssText = 'width:120px;display:block;margin-bottom:4px';
var cap = document.createElement('div');
box.appendChild(img); box.appendChild(cap); document.body.appendChild(box);
function show(ev) {
  var p = ev.points[0]; if (!p || !p.customdata) return;
  img.src = p.customdata[1]; cap.textContent = p.text; box.style.display = 'block';
}
gd.on('plotly_hover', show);
gd.on('plotly_click', show);
"""


def _export_path(path, default_name: str) -> Path:
    path = Path(path) if path is not None else settings.exports_dir() / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def export_umap_html(
    frame: pd.DataFrame,
    path=None,
    color: str = "articleType",
    *,
    data: Dataset | None = None,
    store=None,
    title: str = "",
) -> Path:
    """The map as one standalone HTML file: plotly.js and every thumbnail (data URIs)
    embedded; hovering or clicking a point shows its photo. Pictures come from ``data``,
    a ``store``'s thumbnails or the ``image_path`` column. Default:
    ``data/exports/umap.html``.
    """
    pics = thumbnails(frame.index, frame, data, size=(64, 48), store=store)
    uris = [data_uri(p) for p in pics]
    fig = map_figure(frame, color, thumbnails_uri=uris, title=title or f"latent map, by {color}")
    path = _export_path(path, "umap.html")
    fig.write_html(path, include_plotlyjs=True, full_html=True, post_script=_HOVER_IMAGE_JS)
    return path


def export_recommendations_html(
    store, query_ids, path=None, k: int = 6, data: Dataset | None = None
) -> Path:
    """Recommendation rows as one standalone HTML file (plotly.js and images embedded)."""
    fig = recommendation_figure(store, query_ids, k, data)
    path = _export_path(path, "recommendations.html")
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path
