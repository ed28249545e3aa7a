"""A catalogue as the database keeps it: its content key, item documents, thumbnails.

A catalogue is identified by what it holds, not by where it was read from: the key
is a hash of its ids and of every image file's bytes (``x/../shared/data/fashion-products``
and ``shared/data/fashion-products`` are the same catalogue, and so are two copies on
two machines). Without image files (vectors indexed from code) the key hashes the ids
and the ``source`` string.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import RecsysError
from ..protocol import HIDDEN_COLUMNS, THUMB_MIME, make_thumbnail
from .codecs import plain_records

KEY_PREFIX = "cat-"


def image_sources(images, ids: list) -> list:
    """``images`` (paths or bytes aligned with ``ids``, a ``{id: path}`` mapping or a Series
    indexed by id, or a callable ``id -> path | bytes``) as one source per id."""
    if callable(images) and not isinstance(images, (pd.Series, dict)):
        return [images(i) for i in ids]
    if isinstance(images, pd.Series):
        images = images.reindex(pd.Index(ids)).tolist()
    elif isinstance(images, dict):
        images = [images.get(i) for i in ids]
    images = list(images)
    if len(images) != len(ids):
        raise RecsysError(f"{len(ids)} items but {len(images)} images; nothing was written")
    return images


def _pixels(source: np.ndarray) -> np.ndarray:
    a = np.asarray(source)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a


def read_image(source, item) -> bytes:
    """An image's bytes: read from a path, given as bytes, or a pixel array (uint8, or float
    in [0, 1]) as PNG; a clear error if it is missing."""
    if isinstance(source, np.ndarray):
        buf = io.BytesIO()
        Image.fromarray(_pixels(source)).save(buf, format="PNG")
        return buf.getvalue()
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if source is None or (isinstance(source, float) and source != source):
        raise RecsysError(f"item {item}: no image; nothing was written")
    try:
        return Path(str(source)).read_bytes()
    except OSError as exc:
        raise RecsysError(
            f"item {item}: cannot read image {source}: {exc.strerror or exc}; nothing was written"
        ) from None


def catalog_key(ids: list, images: Sequence | None, source: str) -> str:
    """The content key of a catalogue: its ids and image files' bytes (or ids + source)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(b"recsys-nb catalogue 1\0")
    h.update("\0".join(map(str, ids)).encode())
    if images is None:
        h.update(b"\0source\0" + str(source).encode())
    else:
        h.update(b"\0images\0")
        for item, src in zip(ids, images, strict=True):
            if isinstance(src, np.ndarray):  # pixels: their values, not an encoding of them
                a = _pixels(src)
                data = repr(a.shape).encode() + a.tobytes()
            else:
                data = read_image(src, item)
            h.update(hashlib.blake2b(data, digest_size=16).digest())
    return KEY_PREFIX + h.hexdigest()


class ThumbnailSpool:
    """Thumbnails made before anything is written, kept in a temporary file (not in memory).

    Every image of ``rows`` is read and decoded here, so an unreadable one stops the
    index before its first write.
    """

    def __init__(self, ids: list, images: Sequence, rows, on_row: Callable | None = None):
        self._file = tempfile.TemporaryFile(prefix="recsys-nb-thumbs-")
        self._where: dict[int, tuple[int, int, int, int]] = {}
        offset = 0
        for r in rows:
            item = ids[r]
            source = images[r]
            where = "pixels" if isinstance(source, np.ndarray) else source
            data, width, height = make_thumbnail(
                read_image(source, item), f"{where} (item {item}); nothing was written"
            )
            self._file.write(data)
            self._where[r] = (offset, len(data), width, height)
            offset += len(data)
            if on_row is not None:
                on_row(r)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, row: int) -> bool:
        return row in self._where

    def doc(self, row: int, key: str, item) -> dict:
        offset, size, width, height = self._where[row]
        self._file.seek(offset)
        return {
            "_id": f"{key}:{item}",
            "catalog": key,
            "item_id": item,
            "data": self._file.read(size),
            "mime": THUMB_MIME,
            "width": width,
            "height": height,
        }

    def close(self) -> None:
        self._file.close()


def item_records(meta: pd.DataFrame, ids: list) -> list[dict]:
    """Every catalogue column of ``ids`` (not the local ``image_path``), BSON-friendly."""
    rows = meta.reindex(pd.Index(ids)).drop(columns=list(HIDDEN_COLUMNS), errors="ignore")
    return plain_records(rows)


def item_doc(key: str, item, row: int, record: dict) -> dict:
    return {"_id": f"{key}:{item}", "catalog": key, "item_id": item, "pos": row, **record}


def frame_from_items(docs: list[dict]) -> pd.DataFrame:
    """Item documents (no ``_id`` / ``catalog``) as a catalogue table indexed by id, in
    catalogue order."""
    if not docs:
        return pd.DataFrame(index=pd.Index([], name="id"))
    frame = pd.DataFrame.from_records(docs)
    if "pos" in frame.columns:
        frame = frame.sort_values("pos", kind="stable").drop(columns="pos")
    frame = frame.set_index("item_id")
    frame.index.name = "id"
    return frame
