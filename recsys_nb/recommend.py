"""Stage 5, recommend: exact cosine nearest neighbours in latent space.

:func:`top_k` is the arithmetic (numpy, chunked over queries so that memory stays
bounded: a million 32-d items take 128 MB plus one chunk of scores).
:class:`MemoryStore` keeps one catalogue's vectors and metadata in memory and
answers "products like this one" for a catalogue id, a vector or a new image.
"""

from __future__ import annotations

import numpy as np

from .embed import Embeddings, embed_catalog, image_pixels, l2_normalize
from .errors import RecsysError
from .model import load_model
from .protocol import (  # noqa: F401 - check_query, check_vector, image_vector: public here too
    StoreBase,
    as_id,
    check_query,
    check_vector,
    image_vector,
    thumbnail_from_file,
)

CHUNK_BYTES = 64 * 2**20  # scores held at once, per chunk of queries


def top_k(
    queries: np.ndarray,
    items: np.ndarray,
    k: int,
    exclude: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` items with the highest dot product, best first.

    With unit vectors the dot product is the cosine similarity. ``exclude`` gives, per
    query, one item index to leave out (the query item itself; -1 for none); ``mask``
    (n_items,) keeps only the items where it is true. Fewer than ``k`` candidates give
    fewer columns; where only the excluded item is missing, the last score is ``-inf``.
    Equal scores within the k are ordered by item index; which of several items tied
    exactly at the k-th score makes the cut is not specified.
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    items = np.asarray(items, dtype=np.float32)
    if queries.shape[1] != items.shape[1]:
        raise RecsysError(
            f"query vectors have {queries.shape[1]} dimensions, the items {items.shape[1]}"
        )
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=np.int64).reshape(-1)
    k = max(0, min(int(k), items.shape[0] if mask is None else int(np.count_nonzero(mask))))
    n_q = queries.shape[0]
    out_idx = np.empty((n_q, k), dtype=np.int64)
    out_score = np.empty((n_q, k), dtype=np.float32)
    if k == 0:
        return out_idx, out_score
    step = max(1, chunk_bytes // (4 * max(1, items.shape[0])))
    for start in range(0, n_q, step):
        stop = min(start + step, n_q)
        scores = queries[start:stop] @ items.T
        if mask is not None:
            scores[:, ~mask] = -np.inf
        if exclude is not None:
            rows = np.nonzero(exclude[start:stop] >= 0)[0]
            scores[rows, exclude[start:stop][rows]] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        out_idx[start:stop] = np.take_along_axis(part, order, axis=1)
        out_score[start:stop] = np.take_along_axis(part_scores, order, axis=1)
    return out_idx, out_score


class MemoryStore(StoreBase):
    """One catalogue's unit vectors and metadata in memory: exact cosine top-k.

    Build it with :meth:`from_model` (embeds the model's catalogue, cached in the model
    folder) or from an :class:`~recsys_nb.embed.Embeddings`. Its read interface (ids,
    meta, vectors, thumbnails, recommend) is :class:`~recsys_nb.protocol.StoreBase`'s,
    the same as :class:`~recsys_nb.store.MongoStore`'s.
    """

    def __init__(self, embeddings: Embeddings, model=None):
        self.embeddings = embeddings
        self.model = model
        self.ids = np.asarray(embeddings.ids)
        self.vectors = l2_normalize(embeddings.vectors)
        self.meta = embeddings.meta

    @classmethod
    def from_model(cls, model, catalog=None) -> MemoryStore:
        model = load_model(model)
        return cls(embed_catalog(model, catalog), model)

    @property
    def latent_dim(self) -> int:
        return int(self.vectors.shape[1])

    def thumbnails(self, ids) -> dict:
        """``{id: (jpeg bytes, mime)}`` from the catalogue's image files (``image_path``)."""
        return file_thumbnails(self.meta, ids)


def file_thumbnails(meta, ids) -> dict:
    """``{id: (jpeg bytes, mime)}`` from the image files of a catalogue table's
    ``image_path`` column (none without it)."""
    if "image_path" not in meta.columns:
        return {}
    paths = meta["image_path"]
    out = {}
    for item_id in ids:
        item_id = as_id(item_id)
        if item_id in paths.index:
            thumb = thumbnail_from_file(paths.loc[item_id])
            if thumb is not None:
                out[item_id] = thumb
    return out


class FeatureStore(StoreBase):
    """A catalogue under a hand-made image descriptor, as a store: the baselines that
    :func:`~recsys_nb.evaluate.evaluate` scores the model against, to recommend from and to
    compare with (``RecommenderWidget(compare=["hog"])``).

    ``FeatureStore("hog", catalog)``: histograms of oriented gradients (shape, no colour);
    ``"colour_hist"``: the foreground's RGB histogram (colour, no shape). Images are read
    at ``size`` (the products model's, by default), like the evaluation's.
    """

    KINDS = ("hog", "colour_hist")

    def __init__(self, kind: str = "hog", catalog=None, size=None):
        from .data import PRODUCT_IMAGE_SIZE, load_catalog

        if kind not in self.KINDS:
            raise RecsysError(f"unknown image descriptor {kind!r}: use one of {self.KINDS}")
        self.kind, self.name = kind, kind
        self.size = tuple(size or PRODUCT_IMAGE_SIZE)
        items = load_catalog(catalog, size=self.size)
        self.ids, self.meta, self.source = np.asarray(items.ids), items.meta, items.source
        self.vectors = l2_normalize(self._features(items.images))

    def _features(self, images: np.ndarray) -> np.ndarray:
        from .evaluate import colour_histogram, oriented_gradients

        describe = oriented_gradients if self.kind == "hog" else colour_histogram
        return np.asarray(describe(images), dtype=np.float32)

    @property
    def latent_dim(self) -> int:
        return int(self.vectors.shape[1])

    def recommend(self, item_id=None, *, vector=None, image=None, k=10, filters=None):
        """As :meth:`StoreBase.recommend`; an image (a path or an array) is described with
        the same descriptor."""
        check_query(item_id, vector, image, k)
        if image is not None:
            vector = self._features(image_pixels(image, self.size, 3)[None])[0]
        return self._search(item_id, vector, k, filters)

    def thumbnails(self, ids) -> dict:
        return file_thumbnails(self.meta, ids)
