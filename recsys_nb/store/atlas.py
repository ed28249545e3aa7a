"""Atlas Vector Search: the index definition, the ``$vectorSearch`` pipeline, index status.

The definition is the one ``recsys-nb db create-index`` sends; ``tests/test_store.py``
validates it against MongoDB's published JSON schema of vector search indexes (npm
``@mongodb-js/search-index-schema``). The local mongod (MongoDB 6.0 Community) has no
``$vectorSearch``: :class:`AtlasSearch` reports ``unsupported`` there and the store
searches exactly.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import RecsysError
from ..protocol import mongo_filter
from .codecs import decode_vector, item_id
from .schema import FILTER_FIELDS, vector_id

MAX_CANDIDATES = 10_000  # Atlas' limit for numCandidates
CANDIDATES_PER_RESULT = 20
QUANTIZATIONS = (None, "none", "scalar", "binary")


def vector_index_name(dim: int) -> str:
    return f"vector_{int(dim)}d"


def vector_index_definition(
    dim: int,
    *,
    similarity: str = "cosine",
    quantization: str | None = None,
    filter_fields=FILTER_FIELDS,
    hnsw: dict | None = None,
) -> dict:
    """An Atlas Vector Search index over ``embeddings.vector`` (HNSW).

    ``quantization`` is ``None``, ``"scalar"`` (int8, about 4x less memory) or
    ``"binary"`` (1 bit a dimension, rescored; for large catalogues; the latent size
    must then be a multiple of 8); ``filter_fields`` are the label fields usable as
    pre-filters (``model_id`` is always one); ``hnsw`` sets
    ``{"maxEdges": 16, "numEdgeCandidates": 100}`` (an Atlas preview option that
    version 2.2.0 of the published index schema does not list yet).
    """
    if quantization not in QUANTIZATIONS:
        raise RecsysError(f"quantization must be none, scalar or binary, got {quantization!r}")
    if quantization == "binary" and int(dim) % 8:
        raise RecsysError(f"binary quantization needs a multiple of 8 dimensions, not {dim}")
    vector = {
        "type": "vector",
        "path": "vector",
        "numDimensions": int(dim),
        "similarity": similarity,
    }
    if quantization and quantization != "none":
        vector["quantization"] = quantization
    if hnsw:
        vector["indexingMethod"] = "hnsw"
        vector["hnswOptions"] = dict(hnsw)
    fields = [vector, {"type": "filter", "path": "model_id"}]
    fields += [{"type": "filter", "path": f} for f in filter_fields if f != "model_id"]
    return {"fields": fields}


def num_candidates(k: int) -> int:
    return int(min(MAX_CANDIDATES, max(CANDIDATES_PER_RESULT * k, k)))


def filter_query(filters: dict | None) -> dict:
    """``{"gender": "Women", "masterCategory": ["A", "B"]}`` as a MongoDB query."""
    return mongo_filter(filters)


def vector_search_pipeline(
    query_vector,
    *,
    model_id: str,
    k: int,
    index: str,
    filters: dict | None = None,
    exclude_item=None,
) -> list[dict]:
    """The aggregation for ``k`` nearest neighbours by Atlas Vector Search.

    ``$vectorSearch`` (cosine; ``numCandidates`` 20 x the results, at most 10,000; the
    model and label filters as pre-filters), the query item dropped, then ``$project``
    with the score turned back into the cosine: Atlas reports ``(1 + cos) / 2``.
    """
    limit = k + (exclude_item is not None)
    if limit > MAX_CANDIDATES:
        raise RecsysError(f"k = {k} is more than vector search returns ({MAX_CANDIDATES})")
    stage = {
        "index": index,
        "path": "vector",
        "queryVector": [float(x) for x in np.asarray(query_vector, dtype=np.float32)],
        "numCandidates": num_candidates(limit),
        "limit": limit,
        "filter": {"model_id": model_id, **filter_query(filters)},
    }
    pipeline: list[dict] = [{"$vectorSearch": stage}]
    if exclude_item is not None:
        pipeline.append({"$match": {"item_id": {"$ne": item_id(exclude_item)}}})
    pipeline += [
        {"$limit": k},
        {
            "$project": {
                "_id": 0,
                "item_id": 1,
                "score": {"$subtract": [{"$multiply": [2, {"$meta": "vectorSearchScore"}]}, 1]},
            }
        },
    ]
    return pipeline


class AtlasSearch:
    """The vector search part of :class:`~recsys_nb.store.MongoStore` (a mixin)."""

    def has_vector_index(self, dim: int | None = None, *, refresh: bool = False) -> bool:
        """Whether the deployment has a queryable vector search index for ``dim``."""
        dim = int(dim or self.latent_dim or 0)
        if refresh or dim not in self._vector_index:
            self._vector_index[dim] = self._search_index_status(vector_index_name(dim)) == "ready"
        return self._vector_index[dim]

    def _search_index_status(self, name: str) -> str:
        """``ready``, ``building``, ``failed``, ``missing`` or ``unsupported``."""
        from pymongo.errors import OperationFailure, PyMongoError

        from ..mongod import scrub

        try:
            found = list(self.embeddings.list_search_indexes(name))
        except OperationFailure:  # e.g. a Community mongod: no Atlas Search
            return "unsupported"
        except PyMongoError as exc:
            raise RecsysError(scrub(f"cannot list search indexes: {exc}", self._uri)) from None
        if not found:
            return "missing"
        doc = found[0]
        if doc.get("queryable"):
            return "ready"
        return "failed" if doc.get("status") == "FAILED" else "building"

    def create_vector_index(
        self,
        dim: int | None = None,
        *,
        quantization: str | None = None,
        similarity: str = "cosine",
        filter_fields=FILTER_FIELDS,
        hnsw: dict | None = None,
        wait: bool = True,
        timeout: float = 600.0,
        poll: float = 5.0,
    ) -> str:
        """Create (or update) the Atlas Vector Search index and poll until it is queryable.

        Returns its name. A deployment without Atlas Search (the local mongod) gives a
        clear error: exact search is used there.
        """
        from pymongo.errors import OperationFailure
        from pymongo.operations import SearchIndexModel

        dim = int(dim or self.latent_dim or 0)
        if dim < 1:
            raise RecsysError("give the latent size (dim) or bind the store to a model")
        name = vector_index_name(dim)
        definition = vector_index_definition(
            dim,
            similarity=similarity,
            quantization=quantization,
            filter_fields=filter_fields,
            hnsw=hnsw,
        )
        self.ensure_schema()
        status = self._search_index_status(name)
        if status == "unsupported":
            raise RecsysError(
                f"the deployment at {self.location} has no Atlas Vector Search (a local "
                "Community mongod): recommend uses exact search there. Set MONGODB_URI to "
                "an Atlas cluster to create a vector index"
            )
        with self._errors(f"creating the vector search index {name}"):
            try:
                if status == "missing":
                    self.embeddings.create_search_index(
                        SearchIndexModel(definition=definition, name=name, type="vectorSearch")
                    )
                else:
                    self.embeddings.update_search_index(name, definition)
            except OperationFailure as exc:
                if "already exists" not in str(exc):
                    raise
        if wait:
            self._wait_queryable(name, timeout, poll)
            self._vector_index[dim] = True
        return name

    def _wait_queryable(self, name: str, timeout: float, poll: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = self._search_index_status(name)
            if status == "ready":
                return
            if status == "failed":
                raise RecsysError(f"the vector search index {name} failed to build")
            if time.monotonic() > deadline:
                raise RecsysError(
                    f"the vector search index {name} is not queryable after {timeout:g} s "
                    f"(status {status}); it keeps building, try again later"
                )
            time.sleep(poll)

    def _use_vector_search(self) -> bool:
        if self.search == "exact":
            return False
        if self.search == "vector":
            if not self.has_vector_index(refresh=True):
                raise RecsysError(
                    f"no queryable vector search index {vector_index_name(self.latent_dim)} "
                    f"at {self.location}: create it (recsys-nb db create-index)"
                )
            return True
        return self.has_vector_index()

    def _vector_search(self, item, vector, k, filters) -> tuple[list, np.ndarray]:
        """``$vectorSearch`` for a stored item (itself left out) or a unit vector."""
        from ..embed import l2_normalize
        from ..protocol import as_id, check_vector

        model_id = self._require_model()
        exclude = None
        if item is not None:
            exclude = item_id(as_id(item))
            with self._errors("reading a vector"):
                doc = self.embeddings.find_one({"_id": vector_id(model_id, exclude)}, {"vector": 1})
            if doc is None:
                raise RecsysError(f"unknown id {item}: not stored for model {model_id}")
            query = l2_normalize(decode_vector(doc["vector"]))
        else:
            query = check_vector(vector, self.latent_dim)
        pipeline = vector_search_pipeline(
            query,
            model_id=model_id,
            k=k,
            index=vector_index_name(self.latent_dim),
            filters=filters,
            exclude_item=exclude,
        )
        with self._errors("vector search"):
            rows = list(self.embeddings.aggregate(pipeline))
        return [r["item_id"] for r in rows], np.asarray([r["score"] for r in rows], np.float32)
