"""The notebook widget: click a product, see its recommendations inline.

``RecommenderWidget`` is an ``anywidget.AnyWidget``. Its React front end lives in
``widgets-react/`` and is built into ``recsys_nb/static/widget.js`` + ``widget.css``
(``make widget``, or ``cd widgets-react && npm ci && npm run build``).

Modules:

``contract``     the Python/JS contract: the synced traits (:class:`WidgetState`) and the
                 message kinds and limits of ``contract.json``, its one source of truth
                 (mirrored by ``widgets-react/src/contract.ts``; both are checked against
                 it by tests/test_widget_contract.py)
``widget``       :class:`RecommenderWidget`, the Python API and the traits' behaviour
``messages``     the answers to the front end's requests
``catalog``      the metadata table, names, labels and facets
``thumbnails``   thumbnails for the replies (cached)
``upload``       a dropped or chosen image file: size limits, decoding
``picture``      the view as a PNG in the output, for readers without a kernel
``bundle``       the built front end (``recsys_nb/static``)
"""

from __future__ import annotations

from ..protocol import THUMB_MAX_BYTES, THUMB_SIZE
from .bundle import BUNDLE_FILES, HOW_TO_BUILD, STATIC_DIR, bundle_paths, file_contents
from .catalog import (
    FACET_COLUMNS,
    LABEL_COLUMNS,
    MAX_FACET_VALUES,
    NAME_COLUMNS,
    TYPE_COLUMNS,
    catalog_meta,
    facets,
    names,
    plain,
    read_catalog_table,
)
from .contract import (
    CONTRACT,
    CONTRACT_PATH,
    MAX_K,
    MAX_PAGE,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    MESSAGE_KINDS,
    WidgetState,
)
from .messages import HANDLERS
from .thumbnails import THUMB_CACHE, Thumbnailer, Thumbnails, png, thumbnailer
from .upload import ImageTooLargeError, decode_image
from .widget import RecommenderWidget

RecommenderWidget.__module__ = __name__  # recsys_nb.widget.RecommenderWidget, as before

# The private names of the module this package replaced (recsys_nb/widget.py).
_file_contents = file_contents
_catalog_meta = catalog_meta
_read_catalog_table = read_catalog_table
_names = names
_facets = facets
_plain = plain
_decode_image = decode_image
_Thumbnails = Thumbnails
_png = png
_thumbnailer = thumbnailer
_HANDLERS = {kind: getattr(RecommenderWidget, name) for kind, name in HANDLERS.items()}

__all__ = [
    "BUNDLE_FILES",
    "CONTRACT",
    "CONTRACT_PATH",
    "FACET_COLUMNS",
    "HANDLERS",
    "HOW_TO_BUILD",
    "LABEL_COLUMNS",
    "MAX_FACET_VALUES",
    "MAX_K",
    "MAX_PAGE",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_PIXELS",
    "MESSAGE_KINDS",
    "NAME_COLUMNS",
    "STATIC_DIR",
    "THUMB_CACHE",
    "THUMB_MAX_BYTES",
    "THUMB_SIZE",
    "TYPE_COLUMNS",
    "ImageTooLargeError",
    "RecommenderWidget",
    "Thumbnailer",
    "Thumbnails",
    "WidgetState",
    "bundle_paths",
    "catalog_meta",
    "decode_image",
    "facets",
    "file_contents",
    "names",
    "plain",
    "png",
    "read_catalog_table",
    "thumbnailer",
]
