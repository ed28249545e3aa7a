"""Thumbnails for the widget's replies: fetched for what is on screen only, and kept."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..protocol import thumbnail_from_file

THUMB_CACHE = 4096  # thumbnails kept per widget

Thumbnailer = Callable[[Any], "tuple[bytes, str] | None"]


class Thumbnails:
    """Thumbnails by id, kept (up to :data:`THUMB_CACHE`) once fetched; ``many`` fetches the
    missing ones of a reply in one call (one database query for a MongoStore)."""

    def __init__(self, fetch_many: Callable[[list], dict]):
        self._fetch_many = fetch_many
        self._cache: dict = {}

    def __call__(self, item_id):
        return self.many([item_id]).get(item_id)

    def many(self, ids) -> dict:
        missing = [i for i in dict.fromkeys(ids) if i not in self._cache]
        if missing:
            found = self._fetch_many(missing)
            if len(self._cache) + len(missing) > THUMB_CACHE:
                self._cache.clear()
            for i in missing:
                self._cache[i] = found.get(i)
        return {i: self._cache[i] for i in ids if self._cache.get(i) is not None}


def png(a: np.ndarray) -> tuple[bytes, str]:
    """An image array (uint8, or floats in [0, 1]) as PNG bytes."""
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    img = Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), "image/png"


def thumbnailer(store, meta: pd.DataFrame, images, custom) -> Thumbnails:
    """Where thumbnails come from: ``custom``, the store's ``thumbnails(ids)``, the
    ``image_path`` column, or ``images``."""
    if custom is not None:
        return Thumbnails(lambda ids: {i: custom(i) for i in ids})
    if callable(getattr(store, "thumbnails", None)):
        return Thumbnails(store.thumbnails)
    if "image_path" in meta.columns:
        paths = meta["image_path"]
        return Thumbnails(lambda ids: {i: thumbnail_from_file(paths.loc[i]) for i in ids})
    if images is not None:
        position = pd.Series(np.arange(len(meta)), index=meta.index)
        return Thumbnails(
            lambda ids: {i: png(np.asarray(images[int(position.loc[i])])) for i in ids}
        )
    return Thumbnails(lambda ids: {})
