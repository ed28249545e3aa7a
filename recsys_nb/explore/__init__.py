"""Stage 6, explore: look inside the latent space.

What the notebooks call, so that they stay thin (everything is importable from
``recsys_nb.explore``; the modules say where it lives):

- the notebooks' catalogue and models (:mod:`.notebook`): :func:`notebook_catalog` and
  :func:`notebook_model` (in quick mode, ``RECSYS_NB_QUICK=1``, a 2,000-item catalogue
  at 32x24 pixels and small models in ``models/quick-<name>``, trained once and reused);
- 2-D maps of the embeddings (:mod:`.projection`): :func:`umap_projection` (umap-learn,
  seeded, cached in the model folder so that a re-run is instant), :func:`pca_projection`,
  :func:`projection_frame` and :func:`neighbour_preservation` (k-nearest-neighbour
  searches, no n x n matrix) to compare them;
- figures (:mod:`.figures`): :func:`map_figure` (plotly, coloured by a metadata column;
  by ``baseColour`` in the products' own colours, :mod:`.colours`), loss curves,
  recommendations as pictures, a PNG of the map;
- :class:`LatentExplorer` (:mod:`.explorer`): a ``go.FigureWidget`` with the hovered or
  clicked product's photo beside it, search by name, the lasso/box selection shown as an
  image grid (the rest greyed) and as a table to save as CSV, and hooks for other widgets
  (:meth:`~LatentExplorer.on_select`, :meth:`~LatentExplorer.highlight`);
- image grids (:class:`ImageGrid`, :mod:`.images` and :mod:`.grids`): products per
  category, reconstructions next to originals, recommendation rows, interpolation and
  traversal decoded to images, disagreements of the model with a colour histogram or the
  pretrained CNN;
- standalone HTML files (:mod:`.export`): :func:`export_umap_html` and
  :func:`export_recommendations_html` (plotly's ``write_html``, images embedded as data
  URIs, plotly.js included).

umap-learn, plotly and ipywidgets are imported only by the functions that need them.
"""

# ``_name as _name``: private helpers, importable from here as from the former explore.py
from .colours import BASE_COLOURS, UNKNOWN_COLOUR, base_colour, colour_marker, needs_outline
from .explorer import LatentExplorer, search_items
from .export import _HOVER_IMAGE_JS as _HOVER_IMAGE_JS
from .export import _export_path as _export_path
from .export import export_recommendations_html, export_umap_html
from .figures import (
    COLOR_COLUMNS,
    MAX_LEGEND,
    history_figure,
    map_figure,
    recommendation_figure,
    save_map_png,
)
from .figures import _categories as _categories
from .figures import _hover_text as _hover_text
from .grids import (
    category_grid,
    disagreement_grid,
    disagreement_shares,
    disagreements,
    interpolation_grid,
    recommendation_rows,
    reconstruct,
    reconstruction_grid,
    traversal_grid,
    varying_dims,
)
from .images import (
    THUMB_SIZE,
    ImageGrid,
    data_uri,
    encode_image,
    image_grid,
    thumbnails,
    to_uint8,
)
from .images import _auto_scale as _auto_scale
from .images import _fit_text as _fit_text
from .images import _font as _font
from .notebook import (
    FULL_RECIPE,
    QUICK_ITEMS,
    QUICK_RECIPE,
    QUICK_SIZE,
    model_items,
    notebook_catalog,
    notebook_model,
)
from .projection import _vectors as _vectors
from .projection import (
    latent_map,
    map_agreement,
    neighbour_preservation,
    pca_projection,
    projection_frame,
    store_map,
    umap_projection,
)

__all__ = [
    "BASE_COLOURS",
    "COLOR_COLUMNS",
    "FULL_RECIPE",
    "MAX_LEGEND",
    "QUICK_ITEMS",
    "QUICK_RECIPE",
    "QUICK_SIZE",
    "THUMB_SIZE",
    "UNKNOWN_COLOUR",
    "ImageGrid",
    "LatentExplorer",
    "base_colour",
    "category_grid",
    "colour_marker",
    "data_uri",
    "disagreement_grid",
    "disagreement_shares",
    "disagreements",
    "encode_image",
    "export_recommendations_html",
    "export_umap_html",
    "history_figure",
    "image_grid",
    "interpolation_grid",
    "latent_map",
    "map_figure",
    "model_items",
    "needs_outline",
    "map_agreement",
    "neighbour_preservation",
    "notebook_catalog",
    "notebook_model",
    "pca_projection",
    "projection_frame",
    "recommendation_figure",
    "recommendation_rows",
    "reconstruct",
    "reconstruction_grid",
    "save_map_png",
    "search_items",
    "store_map",
    "thumbnails",
    "to_uint8",
    "traversal_grid",
    "varying_dims",
    "umap_projection",
]
