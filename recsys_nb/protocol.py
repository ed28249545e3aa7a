"""One read interface for every store, defined once, and the helpers the stores share.

:class:`StoreBase` is what the widget, the explorer, the HTML exports and the command
line rely on; :class:`~recsys_nb.recommend.MemoryStore` (one catalogue in memory) and
:class:`~recsys_nb.store.MongoStore` (MongoDB, local or Atlas) both implement it:

``ids``                 the catalogue's ids, in catalogue order (a numpy array)
``meta``                the catalogue's columns, a DataFrame indexed by id, rows in ``ids`` order
``vectors``             unit float32 vectors, one row per id
``model``               the :class:`~recsys_nb.model.TrainedModel` that encodes new images
``position(id)``        the row of an id ("21379" is 21379); a clear error for an unknown one
``vector(id)``          its unit vector
``thumbnails(ids)``     ``{id: (bytes, mime)}``: JPEG thumbnails at the widget's size
``recommend(item_id | vector= | image=, k, filters)``  rank, id, score and the catalogue columns

The shared parts live here once: id lookup (:class:`IdIndex`), filters
(:func:`parse_filters`, :func:`filter_mask`, :func:`mongo_filter`, :func:`filter_pairs`),
result tables (:func:`result_table`), query checks and thumbnails (:func:`make_thumbnail`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from .errors import RecsysError

THUMB_SIZE = (120, 160)  # width, height: the widget's cell; larger pictures are shrunk to fit
THUMB_MAX_BYTES = 64 * 2**10  # a JPEG this small and within THUMB_SIZE is kept as it is
THUMB_MIME = "image/jpeg"
THUMB_QUALITY = 85
HIDDEN_COLUMNS = ("image_path",)  # columns never shown in a result table
_INT = re.compile(r"^\s*-?\d+\s*$")


@runtime_checkable
class Store(Protocol):
    """What any store offers to the widget, the explorer and the exports."""

    ids: np.ndarray
    meta: pd.DataFrame
    vectors: np.ndarray

    def __len__(self) -> int: ...

    def position(self, item_id) -> int: ...

    def thumbnails(self, ids) -> dict: ...

    def recommend(
        self, item_id=None, *, vector=None, image=None, k: int = 10, filters=None
    ) -> pd.DataFrame: ...


# --- ids -----------------------------------------------------------------------------------


def plain(value):
    """numpy scalars as Python values (ids, labels)."""
    return value.item() if isinstance(value, np.generic) else value


def as_id(item_id):
    """An id as the Python value it stands for: ``"21379"`` (from a command line) -> 21379."""
    item_id = plain(item_id)
    if isinstance(item_id, str) and _INT.match(item_id):
        return int(item_id)
    return item_id


class IdIndex:
    """Id -> row of a catalogue, with one clear error for an unknown id."""

    def __init__(self, ids, where: str = "in this catalogue"):
        self.ids = np.asarray(ids)
        self.where = where
        self._index = pd.Index(self.ids)
        self._text = self.ids.dtype.kind in ("U", "S", "O")

    def __len__(self) -> int:
        return len(self.ids)

    def key(self, item_id):
        value = as_id(item_id)
        if self._text:
            return str(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise KeyError(item_id)
        return value

    def __contains__(self, item_id) -> bool:
        try:
            self.position(item_id)
        except RecsysError:
            return False
        return True

    def position(self, item_id) -> int:
        try:
            row = self._index.get_loc(self.key(item_id))
            if not isinstance(row, (int, np.integer)):
                raise KeyError(item_id)
            return int(row)
        except (KeyError, ValueError, TypeError):
            examples = ", ".join(map(str, self.ids[:3]))
            raise RecsysError(
                f"unknown id {item_id}: not {self.where} ({len(self.ids)} items, "
                f"ids such as {examples})"
            ) from None


# --- filters ------------------------------------------------------------------------------


def _values(wanted) -> list:
    if isinstance(wanted, (str, bytes, int, float, np.generic)) or wanted is None:
        return [plain(wanted)]
    return [plain(v) for v in wanted]


def parse_filters(filters, columns=None, *, keep_empty: bool = True) -> dict[str, list]:
    """``{"gender": "Women", "masterCategory": ["A", "B"]}`` as ``{column: [values]}``.

    ``columns``: the columns one may filter on (an unknown one is a clear error).
    ``keep_empty=False`` drops columns with no values (the widget: no restriction).
    """
    out: dict[str, list] = {}
    for column, wanted in (filters or {}).items():
        if columns is not None and column not in columns:
            known = ", ".join(map(str, columns)) or "none"
            raise RecsysError(f"cannot filter on {column!r}: the catalogue's columns are {known}")
        values = _values(wanted)
        if values or keep_empty:
            out[str(column)] = values
    return out


def filter_pairs(pairs) -> dict[str, list]:
    """``["gender=Women", "gender=Men"]`` (``--filter``) as ``{"gender": ["Women", "Men"]}``."""
    filters: dict[str, list] = {}
    for pair in pairs or ():
        column, sep, value = str(pair).partition("=")
        if not sep or not column:
            raise RecsysError(f"--filter takes COLUMN=VALUE, got {pair!r}")
        filters.setdefault(column, []).append(value)
    return filters


def _matching(column: pd.Series, values: list) -> list:
    """Values as the column holds them: ``"2011"`` also matches a number column's 2011."""
    if column.dtype.kind in ("i", "u", "f"):
        return values + [int(v) for v in values if isinstance(v, str) and _INT.match(v)]
    return values


def filter_mask(table: pd.DataFrame, filters) -> np.ndarray | None:
    """Rows of ``table`` whose columns match every filter (``None``: no filter)."""
    parsed = parse_filters(filters, list(table.columns))
    if not parsed:
        return None
    mask = np.ones(len(table), dtype=bool)
    for column, values in parsed.items():
        mask &= table[column].isin(_matching(table[column], values)).to_numpy()
    return mask


def mongo_filter(filters) -> dict:
    """The filters as a MongoDB query (``{"gender": {"$in": ["Women"]}}``); a number given as
    text (``year=2011`` from a command line) matches the stored number too."""
    query = {}
    for column, values in parse_filters(filters).items():
        extra = [int(v) for v in values if isinstance(v, str) and _INT.match(v)]
        query[column] = {"$in": values + extra}
    return query


# --- results ------------------------------------------------------------------------------


def result_table(ids, scores, rows: pd.DataFrame) -> pd.DataFrame:
    """rank, id, score, then the items' catalogue columns (``rows`` is indexed by id)."""
    ids = list(ids)
    ids_arr = np.asarray([plain(i) for i in ids]) if ids else np.asarray([], np.int64)
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(ids) + 1),
            "id": ids_arr,
            "score": np.asarray(scores, dtype=np.float32),
        }
    )
    found = rows.reindex(ids_arr).reset_index(drop=True)
    return pd.concat([table, found.drop(columns=list(HIDDEN_COLUMNS), errors="ignore")], axis=1)


def check_query(item_id, vector, image, k: int) -> None:
    """The arguments every store's ``recommend`` takes: exactly one query, k >= 1."""
    if sum(x is not None for x in (item_id, vector, image)) != 1:
        raise RecsysError("give exactly one of item_id, vector or image")
    if k < 1:
        raise RecsysError(f"k must be at least 1, got {k}")


def image_vector(model, image) -> np.ndarray:
    """The unit vector of a new product's image (a path or an array) under ``model``."""
    from .embed import embed, prepare_image

    if model is None:
        raise RecsysError("this store has no model to encode images: give it a model folder")
    return embed(model, prepare_image(model, image)[None])[0]


def check_vector(vector, dim: int) -> np.ndarray:
    from .embed import l2_normalize

    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.shape[0] != dim:
        raise RecsysError(f"query vector has {v.shape[0]} values, the model's latent size is {dim}")
    if not np.all(np.isfinite(v)) or not np.any(v):
        raise RecsysError("query vector must be finite and not all zeros")
    return l2_normalize(v)


# --- thumbnails -----------------------------------------------------------------------------


def make_thumbnail(data: bytes, name: str = "image") -> tuple[bytes, int, int]:
    """An image file's bytes as a JPEG thumbnail at the widget's size: ``(jpeg, width, height)``.

    A JPEG that already fits (at most :data:`THUMB_SIZE`, :data:`THUMB_MAX_BYTES`) is kept
    byte for byte; anything else is decoded, put on white, shrunk to fit and encoded as
    JPEG. An unreadable or truncated file is a :class:`RecsysError` naming ``name``.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if (
                img.format == "JPEG"
                and img.mode in ("RGB", "L")
                and len(data) <= THUMB_MAX_BYTES
                and width <= THUMB_SIZE[0]
                and height <= THUMB_SIZE[1]
            ):
                # decoded at 1/8 scale: every byte is still read, so a truncated file
                # fails here as in a full decode, in 30% less time
                img.draft(img.mode, (1, 1))
                img.load()
                return bytes(data), width, height
            img.load()  # decodes all of it: a truncated file fails here
            if img.mode in ("RGBA", "LA", "P", "PA"):
                rgba = img.convert("RGBA")
                rgb = Image.new("RGB", rgba.size, (255, 255, 255))
                rgb.paste(rgba, mask=rgba.getchannel("A"))
            else:
                rgb = img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise RecsysError(f"cannot read image {name}: {exc}") from None
    rgb.thumbnail(THUMB_SIZE)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=THUMB_QUALITY)
    return buf.getvalue(), rgb.size[0], rgb.size[1]


def thumbnail_from_file(path) -> tuple[bytes, str] | None:
    """The thumbnail of an image file, or ``None`` when it cannot be read (the grid shows
    a blank cell)."""
    try:
        data = Path(str(path)).read_bytes()
        return make_thumbnail(data, str(path))[0], THUMB_MIME
    except (OSError, RecsysError):
        return None


def decode_picture(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """Thumbnail bytes as a uint8 RGB picture of ``size`` (height, width), padded with white
    like the model's preprocessing."""
    from .data import image_from_array

    with Image.open(io.BytesIO(data)) as img:
        pixels = np.asarray(img.convert("RGB"))
    return image_from_array(pixels, size, 3)


# --- the base class -------------------------------------------------------------------------


class StoreBase:
    """The read interface, implemented once on top of ``ids``, ``vectors``, ``meta``.

    A subclass provides ``ids``, ``vectors``, ``meta``, ``model`` and :meth:`thumbnails`;
    it may override :meth:`_labels` (the table filters apply to), :meth:`_rows` (the
    catalogue columns of some ids) and :meth:`_search` (another search than exact cosine).
    """

    model = None
    _where = "in this catalogue"

    def _id_index(self) -> IdIndex:
        index = getattr(self, "_ids_cache", None)
        if index is None or index.ids is not self.ids:
            index = IdIndex(self.ids, self._where)
            self._ids_cache = index
        return index

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, item_id) -> int:
        """Row of ``item_id``; a clear error for an id that is not in the catalogue."""
        return self._id_index().position(item_id)

    @property
    def model_name(self) -> str | None:
        """The model's name (``products``), ``None`` without one; read without loading a
        model that is not loaded yet (``MongoStore`` reads it from the database)."""
        return getattr(self.model, "name", None)

    def vector(self, item_id) -> np.ndarray:
        return self.vectors[self.position(item_id)]

    def thumbnail(self, item_id) -> tuple[bytes, str] | None:
        """One item's thumbnail ``(bytes, mime)``, or ``None``."""
        return self.thumbnails([item_id]).get(as_id(item_id))

    def thumbnails(self, ids) -> dict:  # pragma: no cover - every store overrides it
        return {}

    def _labels(self) -> pd.DataFrame:
        return self.meta

    def _rows(self, ids) -> pd.DataFrame:
        return self.meta

    def recommend(
        self,
        item_id=None,
        *,
        vector=None,
        image=None,
        k: int = 10,
        filters: dict | None = None,
    ) -> pd.DataFrame:
        """The ``k`` items nearest to a catalogue item (itself excluded), a vector or an image.

        ``image`` is a file path or an array; it is preprocessed and encoded with the
        store's model. ``filters`` keeps items whose metadata matches, e.g.
        ``{"gender": "Women"}`` or ``{"masterCategory": ["Footwear", "Apparel"]}``.
        Returns a table with rank, id, score and the item's metadata.
        """
        check_query(item_id, vector, image, k)
        if image is not None:
            vector = image_vector(self.model, image)
        return self._search(item_id, vector, k, filters)

    def neighbours(self, ids, k: int = 10, filters: dict | None = None) -> np.ndarray:
        """The ``k`` nearest items of each of ``ids`` (exact cosine, one batched search), as
        one array of ids: nearest first within each, each id once, ``ids`` themselves left
        out. What the next click is likely to ask for (the widget sends their thumbnails
        ahead)."""
        from .recommend import top_k

        rows = np.array([self.position(i) for i in ids], dtype=np.int64)
        if len(rows) == 0:
            return self.ids[:0]
        mask = filter_mask(self._labels(), filters)
        idx, scores = top_k(self.vectors[rows], self.vectors, k, rows, mask)
        found = pd.unique(self.ids[idx.T[np.isfinite(scores.T)]])  # rank by rank
        return found[~np.isin(found, self.ids[rows])]

    def _search(self, item_id, vector, k: int, filters) -> pd.DataFrame:
        """Exact cosine top-k over ``vectors`` (numpy)."""
        from .recommend import top_k

        vectors = self.vectors
        exclude = None
        if item_id is not None:
            row = self.position(item_id)
            query, exclude = vectors[row], np.array([row])
        else:
            query = check_vector(vector, vectors.shape[1])
        idx, scores = top_k(query, vectors, k, exclude, filter_mask(self._labels(), filters))
        found = np.isfinite(scores[0])
        ids = self.ids[idx[0][found]]
        return result_table(ids, scores[0][found], self._rows(ids))
