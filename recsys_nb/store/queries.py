"""Reads: the model's vectors (cached), the catalogue table, thumbnails, search.

Exact search reads a model's ids, vectors and labels from MongoDB in one batch and
keeps them until the model's ``version`` changes (every write bumps it); the catalogue
table (``meta``) is cached the same way against the catalogue's ``version``. With a
queryable Atlas vector index (``search="auto"`` or ``"vector"``) ``recommend`` runs
``$vectorSearch`` instead and reads only the rows it returns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..embed import l2_normalize
from ..errors import RecsysError
from ..protocol import IdIndex, as_id, result_table
from .catalog import frame_from_items
from .codecs import decode_vectors, item_id
from .schema import model_vectors

READ_BATCH = 10_000


class Queries:
    """The read part of :class:`~recsys_nb.store.MongoStore` (a mixin)."""

    def _load(self) -> dict:
        """The model's ids, unit vectors and labels, read once and cached until a write."""
        model_id = self._require_model()
        with self._errors(f"reading the vectors of {model_id}"):
            doc = self.models.find_one(
                {"_id": model_id}, {"version": 1, "latent_dim": 1, "catalog": 1}
            )
            if doc is None:
                raise RecsysError(
                    f"model {model_id} is not in database {self.database_name!r}: run "
                    "`recsys-nb index --model ...` first"
                )
            version = doc.get("version", 0)
            cached = self._cache.get(model_id)
            if cached is not None and cached["version"] == version:
                return cached
            docs = list(
                self.embeddings.find(
                    model_vectors(model_id),
                    {"_id": 0, "model_id": 0, "dim": 0},
                    batch_size=READ_BATCH,
                )
            )
        if not docs:
            raise RecsysError(f"model {model_id} has no vectors: run `recsys-nb index` first")
        docs.sort(key=lambda d: (d.get("pos", 0), str(d["item_id"])))
        dim = int(doc["latent_dim"])
        vectors = decode_vectors([d.pop("vector") for d in docs], dim)
        ids = np.asarray([d.pop("item_id") for d in docs])
        for d in docs:
            d.pop("pos", None)
        labels = pd.DataFrame.from_records(docs, index=pd.Index(ids, name="id"))
        cached = {
            "version": version,
            "catalog": doc.get("catalog"),
            "ids": ids,
            "vectors": l2_normalize(vectors),
            "labels": labels,
            "index": IdIndex(ids, f"stored for model {model_id}"),
        }
        self._cache[model_id] = cached
        return cached

    # -- the read interface --
    @property
    def ids(self) -> np.ndarray:
        """The model's item ids, in catalogue order."""
        return self._load()["ids"]

    @property
    def vectors(self) -> np.ndarray:
        """The model's unit vectors, one row per id."""
        return self._load()["vectors"]

    def position(self, item_id) -> int:
        return self._load()["index"].position(item_id)

    @property
    def catalog(self) -> str | None:
        """The content key of the model's catalogue."""
        cached = self._cache.get(self._require_model())
        if cached is not None:
            return cached["catalog"]
        return (self.model_doc() or {}).get("catalog")

    @property
    def meta(self) -> pd.DataFrame:
        """Every catalogue column of the model's items, indexed by id, rows in ``ids`` order.

        Read from the ``items`` collection once and cached until the catalogue changes.
        """
        data = self._load()
        key = data["catalog"]
        with self._errors("reading the catalogue"):
            doc = self.catalogs.find_one({"_id": key}, {"version": 1}) or {}
            version = (doc.get("version", 0), data["version"])
            cached = self._meta_cache.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            docs = list(
                self.items.find({"catalog": key}, {"_id": 0, "catalog": 0}, batch_size=READ_BATCH)
            )
        frame = frame_from_items(docs).reindex(pd.Index(data["ids"], name="id"))
        self._meta_cache[key] = (version, frame)
        return frame

    def thumbnails(self, ids) -> dict:
        """``{id: (jpeg bytes, mime)}`` of the ids that have a stored thumbnail."""
        key = self.catalog
        wanted = [item_id(as_id(i)) for i in ids]
        if not wanted:
            return {}
        with self._errors("reading thumbnails"):
            docs = self.thumbnails_collection.find(
                {"_id": {"$in": [f"{key}:{i}" for i in wanted]}},
                {"item_id": 1, "data": 1, "mime": 1},
            )
            return {d["item_id"]: (bytes(d["data"]), d["mime"]) for d in docs}

    def vector(self, item_id) -> np.ndarray:
        data = self._load()
        return data["vectors"][data["index"].position(item_id)]

    def _labels(self) -> pd.DataFrame:
        return self._load()["labels"]

    def _rows(self, ids) -> pd.DataFrame:
        """The catalogue columns of ``ids`` (one query; not the whole table)."""
        wanted = [item_id(i) for i in ids]
        key = self.catalog
        with self._errors("reading the items"):
            docs = list(
                self.items.find(
                    {"catalog": key, "item_id": {"$in": wanted}}, {"_id": 0, "catalog": 0}
                )
            )
        return frame_from_items(docs)

    def neighbours(self, ids, k: int = 10, filters: dict | None = None) -> np.ndarray:
        """As :meth:`StoreBase.neighbours`; with an Atlas vector index none (a search per id
        would cost a round trip each)."""
        if self._use_vector_search():
            return self.ids[:0]
        return super().neighbours(ids, k, filters)

    def _search(self, item, vector, k: int, filters) -> pd.DataFrame:
        self._require_model()
        if self._use_vector_search():
            ids, scores = self._vector_search(item, vector, k, filters)
            return result_table(ids, scores, self._rows(ids))
        return super()._search(item, vector, k, filters)
