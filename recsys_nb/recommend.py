"""Stage 5, recommend: exact cosine nearest neighbours in latent space.

:func:`top_k` is the arithmetic (numpy, chunked over queries so that memory stays
bounded: a million 32-d items take 128 MB plus one chunk of scores).
:class:`MemoryStore` keeps one catalogue's vectors and metadata in memory and
answers "products like this one" for a catalogue id, a vector or a new image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .embed import Embeddings, embed, embed_catalog, l2_normalize, prepare_image
from .errors import RecsysError
from .model import load_model

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


class MemoryStore:
    """One catalogue's unit vectors and metadata in memory: exact cosine top-k.

    Build it with :meth:`from_model` (embeds the model's catalogue, cached in the model
    folder) or from an :class:`~recsys_nb.embed.Embeddings`.
    """

    def __init__(self, embeddings: Embeddings, model=None):
        self.embeddings = embeddings
        self.model = model
        self.ids = np.asarray(embeddings.ids)
        self.vectors = l2_normalize(embeddings.vectors)
        self.meta = embeddings.meta
        self._position = pd.Series(np.arange(len(self.ids)), index=self.ids)

    @classmethod
    def from_model(cls, model, catalog=None) -> MemoryStore:
        model = load_model(model)
        return cls(embed_catalog(model, catalog), model)

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, item_id) -> int:
        """Row of ``item_id``; a clear error for an id that is not in the catalogue."""
        try:
            return int(self._position[type(self.ids[0])(item_id)])
        except (KeyError, ValueError, TypeError):
            raise RecsysError(
                f"unknown id {item_id}: not in this catalogue ({len(self)} items, "
                f"ids such as {', '.join(map(str, self.ids[:3]))})"
            ) from None

    def vector(self, item_id) -> np.ndarray:
        return self.vectors[self.position(item_id)]

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
        exclude = None
        if item_id is not None:
            position = self.position(item_id)
            query, exclude = self.vectors[position], np.array([position])
        elif vector is not None:
            query = check_vector(vector, self.vectors.shape[1])
        else:
            query = image_vector(self.model, image)
        idx, scores = top_k(query, self.vectors, k, exclude, self._filter_mask(filters))
        return self._table(idx[0], scores[0])

    def _filter_mask(self, filters: dict | None) -> np.ndarray | None:
        if not filters:
            return None
        mask = np.ones(len(self), dtype=bool)
        for column, wanted in filters.items():
            if column not in self.meta.columns:
                raise RecsysError(
                    f"cannot filter on {column!r}: the catalogue has {', '.join(self.meta.columns)}"
                )
            values = [wanted] if isinstance(wanted, (str, int)) else list(wanted)
            mask &= self.meta[column].isin(values).to_numpy()
        return mask

    def _table(self, idx: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        found = np.isfinite(scores)
        idx, scores = idx[found], scores[found]
        ids = self.ids[idx]
        table = pd.DataFrame({"rank": np.arange(1, len(idx) + 1), "id": ids, "score": scores})
        meta = self.meta.reindex(ids).reset_index(drop=True)
        return pd.concat([table, meta.drop(columns=["image_path"], errors="ignore")], axis=1)


def check_query(item_id, vector, image, k: int) -> None:
    """The arguments every store's ``recommend`` takes: exactly one query, k >= 1."""
    if sum(x is not None for x in (item_id, vector, image)) != 1:
        raise RecsysError("give exactly one of item_id, vector or image")
    if k < 1:
        raise RecsysError(f"k must be at least 1, got {k}")


def image_vector(model, image) -> np.ndarray:
    """The unit vector of a new product's image (a path or an array) under ``model``."""
    if model is None:
        raise RecsysError("this store has no model to encode images: give it a model folder")
    return embed(model, prepare_image(model, image)[None])[0]


def check_vector(vector, dim: int) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.shape[0] != dim:
        raise RecsysError(f"query vector has {v.shape[0]} values, the model's latent size is {dim}")
    if not np.all(np.isfinite(v)) or not np.any(v):
        raise RecsysError("query vector must be finite and not all zeros")
    return l2_normalize(v)
