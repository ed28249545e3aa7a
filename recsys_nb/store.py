"""MongoDB store: catalogue items, models and embeddings in MongoDB, "products like this one".

One database per project setting (``database=`` or ``$RECSYS_NB_MONGO_DB``, default
``recsys_nb``) on the deployment of ``$MONGODB_URI`` (Atlas or any mongod), else on the
local mongod of :mod:`recsys_nb.mongod`. Three collections:

``items``
    one document per catalogue item: ``catalog`` (its source), ``item_id``, the
    catalogue's columns (labels, ``productDisplayName``, ``image_path``).
``models``
    one per model id: ``name``, ``path``, ``latent_dim``, ``meta`` (``meta.json``),
    ``catalog``, ``n_items``, ``version`` (bumped by every write, for caches).
``embeddings``
    one per (``model_id``, ``item_id``), unique: ``vector`` (float32, BSON binary vector
    subtype 9), ``dim``, ``pos`` (the catalogue row) and the label fields used as filters.

Writes (:meth:`MongoStore.index`) check every vector first (finite, the model's latent
size) and write nothing when one is bad; then they upsert in unordered bulk batches with
deterministic ``_id`` s, so that running twice, running two at once or running again
after a crash leaves exactly one document per item. Re-training a model gives it a new
model id (``meta.json``), so its vectors never mix with the old ones.

Queries (:meth:`MongoStore.recommend`) use Atlas Vector Search (``$vectorSearch``,
cosine) when the deployment has a queryable vector index for the model's latent size
(:meth:`MongoStore.create_vector_index`), else exact cosine in numpy over the model's
vectors, read from MongoDB in one batch and cached until the next write to that model;
the exact search gives the same ids as :class:`~recsys_nb.recommend.MemoryStore`.
The local mongod (MongoDB 6.0 Community) has no ``$vectorSearch``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from . import settings
from .embed import Embeddings, embed_catalog, l2_normalize
from .errors import RecsysError
from .model import TrainedModel, load_model
from .mongod import URI_ENV, redact_uri, resolve_uri, scrub
from .recommend import check_query, check_vector, image_vector, top_k

log = logging.getLogger(__name__)

DB_ENV = settings.DB_ENV
DEFAULT_DB = settings.DEFAULT_DB
ITEMS, MODELS, EMBEDDINGS = "items", "models", "embeddings"
BATCH_SIZE = 2000
MAX_CANDIDATES = 10_000  # Atlas' limit for numCandidates
CANDIDATES_PER_RESULT = 20
# Columns that are text to show, not labels to filter on.
NOT_LABELS = ("productDisplayName", "name", "image_path")
# Label fields declared as filter fields of a vector search index.
FILTER_FIELDS = (
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "usage",
    "year",
    "label",
)
VECTOR_DTYPE_BYTE = 0x27  # BSON binary vector subtype 9, float32
VECTOR_HEADER = bytes([VECTOR_DTYPE_BYTE, 0])


# --- schema --------------------------------------------------------------------------------

ID_TYPES = ["int", "long", "string"]

VALIDATORS = {
    ITEMS: {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["catalog", "item_id"],
            "properties": {
                "catalog": {"bsonType": "string"},
                "item_id": {"bsonType": ID_TYPES},
                "image_path": {"bsonType": ["string", "null"]},
            },
        }
    },
    MODELS: {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["name", "latent_dim", "meta"],
            "properties": {
                "name": {"bsonType": "string"},
                "latent_dim": {"bsonType": ["int", "long"], "minimum": 1, "maximum": 65536},
                "meta": {"bsonType": "object"},
                "version": {"bsonType": ["int", "long"]},
            },
        }
    },
    EMBEDDINGS: {
        "$and": [
            {
                "$jsonSchema": {
                    "bsonType": "object",
                    "required": ["model_id", "item_id", "dim", "vector"],
                    "properties": {
                        "model_id": {"bsonType": "string"},
                        "item_id": {"bsonType": ID_TYPES},
                        "pos": {"bsonType": ["int", "long"], "minimum": 0},
                        "dim": {"bsonType": ["int", "long"], "minimum": 1, "maximum": 65536},
                        "vector": {"bsonType": ["binData", "array"]},
                    },
                }
            },
            # the vector holds exactly `dim` values (the model's latent size):
            # float32 binary vectors are 2 header bytes + 4 bytes a value.
            {
                "$expr": {
                    "$cond": [
                        {"$isArray": "$vector"},
                        {"$eq": [{"$size": "$vector"}, "$dim"]},
                        {
                            "$eq": [
                                {"$binarySize": "$vector"},
                                {"$add": [{"$multiply": ["$dim", 4]}, 2]},
                            ]
                        },
                    ]
                }
            },
        ]
    },
}


def encode_vector(vector: np.ndarray):
    """A float32 vector as a BSON binary vector (subtype 9, dtype float32)."""
    from bson.binary import Binary

    return Binary(VECTOR_HEADER + np.asarray(vector, dtype="<f4").tobytes(), 9)


def encode_vectors(vectors: np.ndarray) -> list:
    """The rows of a matrix as BSON binary vectors (what :func:`encode_vector` gives each).

    One buffer for all rows (header bytes + little-endian float32 values), then one
    slice a row: several times faster than encoding row by row.
    """
    from bson.binary import Binary

    rows = np.ascontiguousarray(vectors, dtype="<f4")
    if rows.ndim != 2:
        raise ValueError(f"expected a matrix of vectors, got shape {rows.shape}")
    n, dim = rows.shape
    width = len(VECTOR_HEADER) + 4 * dim
    buf = np.empty((n, width), dtype=np.uint8)
    buf[:, : len(VECTOR_HEADER)] = np.frombuffer(VECTOR_HEADER, dtype=np.uint8)
    buf[:, len(VECTOR_HEADER) :] = rows.view(np.uint8).reshape(n, 4 * dim)
    raw = buf.tobytes()
    return [Binary(raw[i * width : (i + 1) * width], 9) for i in range(n)]


def decode_vectors(values: list, dim: int) -> np.ndarray:
    """Stored vectors (binary float32 vectors or arrays of numbers) as a float32 matrix."""
    if not values:
        return np.zeros((0, dim), dtype=np.float32)
    if all(isinstance(v, bytes) for v in values):  # bson Binary is a bytes subclass
        raw = b"".join(bytes(v)[2:] for v in values)
        return np.frombuffer(raw, dtype="<f4").reshape(len(values), dim).astype(np.float32)
    return np.asarray(
        [np.frombuffer(bytes(v)[2:], "<f4") if isinstance(v, bytes) else v for v in values],
        dtype=np.float32,
    )


def _catalog_key(source: str) -> str:
    return hashlib.sha1(str(source).encode()).hexdigest()[:12]


def _plain(value):
    """numpy scalars and NaN as BSON-friendly Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _plain_column(column: pd.Series) -> list:
    """A column's values as :func:`_plain` gives them (missing values as ``None``), fast.

    Whole-column conversions for numbers, booleans and text; any other column value by
    value.
    """
    dtype = column.dtype
    kind = dtype.kind if isinstance(dtype, np.dtype) else None
    if kind in ("i", "u", "b"):
        return column.tolist()  # Python ints and bools
    if kind == "f":
        values = column.to_numpy()
        out = values.tolist()
        for i in np.flatnonzero(~np.isfinite(values)):
            out[i] = None
        return out
    if isinstance(dtype, pd.StringDtype) or (
        kind == "O" and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    ):
        out = column.tolist()  # str, and None / NaN / NA where missing
        for i in np.flatnonzero(column.isna().to_numpy()):
            out[i] = None
        return out
    return [_plain(v) for v in column.to_numpy(dtype=object)]


def _plain_records(frame: pd.DataFrame) -> list[dict]:
    """The rows of ``frame`` as dicts of BSON-friendly values (see :func:`_plain_column`)."""
    columns = list(frame.columns)
    if not columns:
        return [{} for _ in range(len(frame))]
    values = [_plain_column(frame.iloc[:, j]) for j in range(len(columns))]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _item_id(value):
    value = _plain(value)
    return value if isinstance(value, (int, str)) else str(value)


def check_vectors(ids, vectors, dim: int) -> np.ndarray:
    """``vectors`` as a float32 (n, dim) matrix, or an error naming the first bad item.

    Refused: a vector whose length is not ``dim`` (the model's latent size), NaN or
    infinite values, all-zero vectors (no direction), ids given twice.
    """
    ids = list(ids)
    if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
        rows = vectors
        if rows.shape[1] != dim:
            raise RecsysError(
                f"item {ids[0] if ids else '?'}: vector has {rows.shape[1]} values but the "
                f"model's latent size is {dim} (all {len(ids)} vectors); nothing was written"
            )
    else:
        rows = list(vectors)
        for item, v in zip(ids, rows, strict=False):
            size = np.asarray(v).reshape(-1).shape[0]
            if size != dim:
                raise RecsysError(
                    f"item {item}: vector has {size} values but the model's latent size is "
                    f"{dim}; nothing was written"
                )
        rows = np.asarray(rows, dtype=np.float64).reshape(len(ids), dim)
    if len(rows) != len(ids):
        raise RecsysError(f"{len(ids)} ids but {len(rows)} vectors; nothing was written")
    rows64 = np.asarray(rows, dtype=np.float64)
    bad = ~np.all(np.isfinite(rows64), axis=1)
    # finite doubles that overflow float32 become infinite when stored
    with np.errstate(over="ignore"):
        bad |= ~np.all(np.isfinite(rows64.astype(np.float32)), axis=1)
    if bad.any():
        where = np.nonzero(bad)[0]
        first = where[0]
        others = f" ({len(where)} items in all)" if len(where) > 1 else ""
        raise RecsysError(
            f"item {ids[first]}: vector has NaN or infinite values{others}; nothing was written"
        )
    zero = ~np.any(rows64 != 0, axis=1)
    if zero.any():
        raise RecsysError(
            f"item {ids[int(np.nonzero(zero)[0][0])]}: vector is all zeros; nothing was written"
        )
    seen = pd.Index(ids)
    if seen.has_duplicates:
        raise RecsysError(f"item {seen[seen.duplicated()][0]} is given twice; nothing was written")
    return rows64.astype(np.float32)


# --- $vectorSearch -------------------------------------------------------------------------


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
    ``"binary"`` (1 bit a dimension, rescored; for large catalogues); ``filter_fields``
    are the label fields usable as pre-filters (``model_id`` is always one);
    ``hnsw`` sets ``{"maxEdges": 16, "numEdgeCandidates": 100}``.
    """
    if quantization not in (None, "none", "scalar", "binary"):
        raise RecsysError(f"quantization must be none, scalar or binary, got {quantization!r}")
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
    query = {}
    for column, wanted in (filters or {}).items():
        values = [wanted] if isinstance(wanted, (str, int)) else list(wanted)
        query[column] = {"$in": [_plain(v) for v in values]}
    return query


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
    pre_filter = {"model_id": model_id, **filter_query(filters)}
    stage = {
        "index": index,
        "path": "vector",
        "queryVector": [float(x) for x in np.asarray(query_vector, dtype=np.float32)],
        "numCandidates": num_candidates(limit),
        "limit": limit,
        "filter": pre_filter,
    }
    pipeline: list[dict] = [{"$vectorSearch": stage}]
    if exclude_item is not None:
        pipeline.append({"$match": {"item_id": {"$ne": _item_id(exclude_item)}}})
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


# --- the store -------------------------------------------------------------------------------


class MongoStore:
    """Items, models and embeddings in MongoDB; ``recommend`` like :class:`MemoryStore`.

    ``uri``: a MongoDB URI, else ``$MONGODB_URI``, else the local mongod (started if
    needed, ``start=False`` to refuse). ``model``: a model folder, a
    :class:`TrainedModel` or a model id already in the database. ``search``:
    ``"auto"`` (vector search where the deployment has the index, else exact),
    ``"exact"`` or ``"vector"``.
    """

    def __init__(
        self,
        uri: str | None = None,
        database: str | None = None,
        *,
        model=None,
        search: str = "auto",
        timeout_ms: int = 5000,
        mongo_dir=None,
        start: bool = True,
    ):
        import pymongo

        if search not in ("auto", "exact", "vector"):
            raise RecsysError(f"search must be auto, exact or vector, got {search!r}")
        self._uri = resolve_uri(uri, start=start, dbpath=mongo_dir)
        self.database_name = database or settings.database()
        self.search = search
        self.model: TrainedModel | None = None
        self.model_id: str | None = None
        self.latent_dim: int | None = None
        self._cache: dict = {}
        self._vector_index: dict[int, bool] = {}
        self._schema_ready = False
        with self._errors(f"cannot connect to MongoDB at {self.location}"):
            self._client = pymongo.MongoClient(
                self._uri,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                appname="recsys-nb",
            )
            self._client.admin.command("ping")
        self.db = self._client[self.database_name]
        self.items = self.db[ITEMS]
        self.models = self.db[MODELS]
        self.embeddings = self.db[EMBEDDINGS]
        if model is not None:
            self.use(model)

    @classmethod
    def from_model(cls, model, catalog=None, *, index: bool = False, **kwargs) -> MongoStore:
        """A store bound to ``model``; ``index=True`` embeds and writes its catalogue first."""
        store = cls(**kwargs)
        model = load_model(model)
        if index:
            store.index(model, catalog)
        store.use(model)
        if not store.models.find_one({"_id": store.model_id, "n_items": {"$gt": 0}}, {"_id": 1}):
            raise RecsysError(
                f"model {store.model_id} has no vectors in database {store.database_name!r} "
                f"at {store.location}: run `recsys-nb index --model {model.path}"
                + (f" --catalog {catalog}`" if catalog else "`")
            )
        return store

    # -- plumbing --
    @property
    def location(self) -> str:
        """The deployment's URI without its password."""
        return redact_uri(self._uri)

    def __repr__(self) -> str:
        model = f", model_id={self.model_id!r}" if self.model_id else ""
        return f"MongoStore({self.location!r}, database={self.database_name!r}{model})"

    @contextlib.contextmanager
    def _errors(self, what: str):
        """pymongo errors as a RecsysError with the URI's secrets scrubbed out."""
        import pymongo.errors as pe

        try:
            yield
        except RecsysError:
            raise
        except pe.ServerSelectionTimeoutError as exc:
            raise RecsysError(
                scrub(
                    f"{what}: server not reachable ({str(exc).split(',')[0]}); is it "
                    f"running? (recsys-nb db start, or check ${URI_ENV})",
                    self._uri,
                )
            ) from None
        except (pe.PyMongoError, ValueError, TypeError) as exc:
            raise RecsysError(scrub(f"{what}: {type(exc).__name__}: {exc}", self._uri)) from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MongoStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ensure_schema(self) -> None:
        """Collections with their validators, and the unique indexes (idempotent)."""
        if self._schema_ready:
            return
        with self._errors("cannot set up the collections"):
            existing = set(self.db.list_collection_names())
            for name, validator in VALIDATORS.items():
                if name in existing:
                    self.db.command(
                        "collMod",
                        name,
                        validator=validator,
                        validationLevel="strict",
                        validationAction="error",
                    )
                else:
                    with contextlib.suppress(Exception):  # created meanwhile by another process
                        self.db.create_collection(
                            name,
                            validator=validator,
                            validationLevel="strict",
                            validationAction="error",
                        )
            self.embeddings.create_index(
                [("model_id", 1), ("item_id", 1)], unique=True, name="model_item"
            )
            self.items.create_index(
                [("catalog", 1), ("item_id", 1)], unique=True, name="catalog_item"
            )
            self.models.create_index([("name", 1)], name="name")
        self._schema_ready = True

    # -- models --
    def use(self, model) -> MongoStore:
        """Bind the store to a model (folder, TrainedModel or a model id in the database)."""
        if isinstance(model, str) and not os.path.isdir(model):
            with self._errors("cannot read the models"):
                doc = self.models.find_one({"_id": model}, {"latent_dim": 1})
            if doc is None:
                raise RecsysError(
                    f"no model {model!r} in database {self.database_name!r} "
                    f"(models: {', '.join(self.model_ids()) or 'none'})"
                )
            self.model, self.model_id, self.latent_dim = None, model, int(doc["latent_dim"])
            return self
        model = load_model(model)
        self.model = model
        self.model_id = str(model.meta.get("model_id", model.name))
        self.latent_dim = model.latent_dim
        return self

    def model_ids(self) -> list[str]:
        with self._errors("cannot read the models"):
            return [d["_id"] for d in self.models.find({}, {"_id": 1}).sort("_id", 1)]

    def model_doc(self, model_id: str | None = None) -> dict | None:
        with self._errors("cannot read the models"):
            return self.models.find_one({"_id": model_id or self._require_model()})

    def _require_model(self) -> str:
        if self.model_id is None:
            raise RecsysError("this store has no model: MongoStore(model=...) or store.use(model)")
        return self.model_id

    def __len__(self) -> int:
        with self._errors("cannot count the vectors"):
            return self.embeddings.count_documents({"model_id": self._require_model()})

    # -- writes --
    def index(
        self,
        model,
        catalog=None,
        *,
        embeddings: Embeddings | None = None,
        batch_size: int = BATCH_SIZE,
        resume: bool = True,
        replace: bool = False,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Embed ``catalog`` with ``model`` and write items, model and vectors.

        See :meth:`index_embeddings`; the vectors come from :func:`embed_catalog`
        (cached in the model folder) unless ``embeddings`` are given.
        """
        model = load_model(model)
        if embeddings is None:
            embeddings = embed_catalog(model, catalog)
        meta = dict(model.meta)
        meta.setdefault("model_id", model.name)
        result = self.index_embeddings(
            embeddings,
            latent_dim=model.latent_dim,
            name=model.name,
            path=str(model.path),
            meta=meta,
            batch_size=batch_size,
            resume=resume,
            replace=replace,
            on_batch=on_batch,
        )
        if self.model_id is None:
            self.use(model)
        return result

    def index_embeddings(
        self,
        embeddings: Embeddings,
        *,
        latent_dim: int,
        name: str | None = None,
        path: str | None = None,
        meta: dict | None = None,
        batch_size: int = BATCH_SIZE,
        resume: bool = True,
        replace: bool = False,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Write one model's vectors for a catalogue; idempotent and resumable.

        Every vector is checked before anything is written. Items are upserted, then the
        vectors that are not yet stored for this model id (all of them with
        ``resume=False``) in unordered bulk batches of ``batch_size``; a write that
        fails half-way (crash, lost connection, killed process) is completed by
        running the same call again. ``replace`` first deletes the model's vectors
        (needed to index the same model id with another catalogue).
        """
        model_id = str(embeddings.model_id)
        dim = int(latent_dim)
        ids_arr = np.asarray(embeddings.ids)
        if ids_arr.dtype.kind in ("i", "u", "U"):  # tolist gives Python ints / str already
            ids = ids_arr.tolist()
        else:
            ids = [_item_id(i) for i in ids_arr.tolist()]
        vectors = check_vectors(ids, embeddings.vectors, dim)
        source = str(embeddings.source)
        meta = dict(meta or {"model_id": model_id})
        started = time.monotonic()
        self.ensure_schema()
        what = f"writing model {model_id} to {self.location} (database {self.database_name!r})"
        with self._errors(what):
            old = self.models.find_one({"_id": model_id}, {"latent_dim": 1, "catalog": 1})
            if old is not None and int(old["latent_dim"]) != dim:
                raise RecsysError(
                    f"model {model_id} is stored with latent size {old['latent_dim']}, not "
                    f"{dim}: a re-trained model needs a new model id"
                )
            if replace:
                self.embeddings.delete_many({"model_id": model_id})
            elif old is not None and old.get("catalog") not in (None, source):
                raise RecsysError(
                    f"model {model_id} is indexed with the catalogue {old['catalog']}, not "
                    f"{source}: pass replace=True (--replace) to index it with this one"
                )
            now = dt.datetime.now(dt.UTC)
            self.models.update_one(
                {"_id": model_id},
                {
                    "$set": {
                        "name": name or model_id,
                        "path": path,
                        "latent_dim": dim,
                        "meta": meta,
                        "catalog": source,
                        "n_items": len(ids),
                        "complete": False,
                        "updated_at": now,
                    },
                    "$setOnInsert": {"created_at": now},
                    "$inc": {"version": 1},
                },
                upsert=True,
            )
            overwrite = not resume or replace
            self._write_items(embeddings, ids, source, batch_size, overwrite)
            todo = np.arange(len(ids))
            if not overwrite:
                stored = {
                    d["item_id"]
                    for d in self.embeddings.find({"model_id": model_id}, {"_id": 0, "item_id": 1})
                }
                todo = np.array([i for i, item in enumerate(ids) if item not in stored], dtype=int)
            labels = self._label_frame(embeddings.meta, ids)
            written = 0
            for start in range(0, len(todo), batch_size):
                rows = todo[start : start + batch_size]
                encoded = encode_vectors(vectors[rows])  # one buffer, then a slice a row
                docs = [
                    {
                        "_id": f"{model_id}:{ids[r]}",
                        "model_id": model_id,
                        "item_id": ids[r],
                        "pos": r,
                        "dim": dim,
                        "vector": v,
                        **labels[r],
                    }
                    for r, v in zip(rows.tolist(), encoded, strict=True)
                ]
                if overwrite:
                    self._upsert(self.embeddings, docs, what)
                else:  # new documents: inserts are ~4x faster than upserts
                    self._insert(self.embeddings, docs, what)
                written += len(docs)
                self.models.update_one({"_id": model_id}, {"$inc": {"version": 1}})
                if on_batch is not None:
                    on_batch(len(ids) - len(todo) + written, len(ids))
            stored_n = self.embeddings.count_documents({"model_id": model_id})
            self.models.update_one(
                {"_id": model_id},
                {
                    "$set": {
                        "complete": stored_n == len(ids),
                        "indexed_at": dt.datetime.now(dt.UTC),
                    },
                    "$inc": {"version": 1},
                },
            )
        self._cache.pop(model_id, None)
        seconds = time.monotonic() - started
        result = {
            "model_id": model_id,
            "database": self.database_name,
            "n_items": len(ids),
            "written": written,
            "skipped": len(ids) - len(todo),
            "stored": stored_n,
            "seconds": round(seconds, 3),
        }
        log.info("indexed %s", result)
        return result

    def _write_items(
        self, embeddings: Embeddings, ids: list, source: str, batch_size: int, overwrite: bool
    ):
        """Insert the catalogue's items that are missing (all replaced with ``overwrite``)."""
        key = _catalog_key(source)
        rows = range(len(ids))
        if not overwrite:
            stored = {d["item_id"] for d in self.items.find({"catalog": source}, {"item_id": 1})}
            rows = [r for r in rows if ids[r] not in stored]
        records = _plain_records(embeddings.meta.reindex(np.asarray(embeddings.ids)))
        what = f"writing the items of {source}"
        for start in range(0, len(rows), batch_size):
            docs = []
            for r in rows[start : start + batch_size]:
                doc = {"_id": f"{key}:{ids[r]}", "catalog": source, "item_id": ids[r]}
                doc.update(records[r])
                docs.append(doc)
            if overwrite:
                self._upsert(self.items, docs, what)
            else:
                self._insert(self.items, docs, what)

    def _insert(self, collection, docs: list[dict], what: str) -> None:
        """Unordered insert of new documents; one already there (same ``_id``) is kept.

        ``_id`` is deterministic (model id and item id), so a document that another
        writer inserted meanwhile holds the same vector.
        """
        from pymongo.errors import BulkWriteError

        try:
            collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            self._refused(what, docs, exc.details.get("writeErrors", []))

    def _refused(self, what: str, docs: list[dict], errors: list[dict]) -> None:
        """Raise for write errors other than duplicate keys (which mean: already stored)."""
        other = [e for e in errors if e.get("code") != 11000]
        if other:
            first = other[0]
            item = docs[first["index"]].get("item_id")
            raise RecsysError(
                scrub(
                    f"{what}: item {item} refused by MongoDB ({first.get('code')}: "
                    f"{first.get('errmsg', '')[:300]}); {len(other)} such errors",
                    self._uri,
                )
            ) from None

    @staticmethod
    def _label_frame(meta: pd.DataFrame, ids: list) -> list[dict]:
        columns = [c for c in meta.columns if c not in NOT_LABELS]
        if not columns:
            return [{} for _ in ids]
        return _plain_records(meta.reindex(pd.Index(ids))[columns])

    def _upsert(self, collection, docs: list[dict], what: str, attempts: int = 5) -> None:
        """Replace-or-insert by ``_id``, unordered; duplicate-key races are retried."""
        from pymongo import ReplaceOne
        from pymongo.errors import BulkWriteError

        pending = docs
        for attempt in range(attempts):
            ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in pending]
            try:
                collection.bulk_write(ops, ordered=False)
                return
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                self._refused(what, pending, errors)
                # another writer inserted the same _id meanwhile: write those again
                pending = [pending[e["index"]] for e in errors]
                time.sleep(0.01 * (attempt + 1))
        raise RecsysError(f"{what}: duplicate-key conflicts did not settle after {attempts} tries")

    def drop_model(self, model_id: str | None = None) -> int:
        """Delete a model and its vectors; returns the number of vectors deleted."""
        model_id = model_id or self._require_model()
        with self._errors(f"deleting model {model_id}"):
            n = self.embeddings.delete_many({"model_id": model_id}).deleted_count
            self.models.delete_one({"_id": model_id})
        self._cache.pop(model_id, None)
        return n

    # -- exact search --
    def _load(self):
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
                    {"model_id": model_id},
                    {"_id": 0, "model_id": 0, "dim": 0},
                    batch_size=10_000,
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
            "position": pd.Series(np.arange(len(ids)), index=ids),
        }
        self._cache[model_id] = cached
        return cached

    def _position(self, data: dict, item_id) -> int:
        ids = data["ids"]
        try:
            return int(data["position"][type(ids[0].item())(item_id)])
        except (KeyError, ValueError, TypeError):
            raise RecsysError(
                f"unknown id {item_id!r}: not stored for model {self.model_id} "
                f"({len(ids)} items, ids such as {', '.join(map(str, ids[:3]))})"
            ) from None

    def vector(self, item_id) -> np.ndarray:
        data = self._load()
        return data["vectors"][self._position(data, item_id)]

    @staticmethod
    def _mask(labels: pd.DataFrame, filters: dict | None) -> np.ndarray | None:
        if not filters:
            return None
        mask = np.ones(len(labels), dtype=bool)
        for column, wanted in filters.items():
            if column not in labels.columns:
                raise RecsysError(
                    f"cannot filter on {column!r}: the stored label fields are "
                    f"{', '.join(labels.columns) or 'none'}"
                )
            values = [wanted] if isinstance(wanted, (str, int)) else list(wanted)
            mask &= labels[column].isin(values).to_numpy()
        return mask

    # -- vector search --
    def has_vector_index(self, dim: int | None = None, *, refresh: bool = False) -> bool:
        """Whether the deployment has a queryable vector search index for ``dim``."""
        dim = int(dim or self.latent_dim or 0)
        if refresh or dim not in self._vector_index:
            self._vector_index[dim] = self._search_index_status(vector_index_name(dim)) == "ready"
        return self._vector_index[dim]

    def _search_index_status(self, name: str) -> str:
        """``ready``, ``building``, ``failed``, ``missing`` or ``unsupported``."""
        from pymongo.errors import OperationFailure, PyMongoError

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
            deadline = time.monotonic() + timeout
            while True:
                status = self._search_index_status(name)
                if status == "ready":
                    break
                if status == "failed":
                    raise RecsysError(f"the vector search index {name} failed to build")
                if time.monotonic() > deadline:
                    raise RecsysError(
                        f"the vector search index {name} is not queryable after {timeout:g} s "
                        f"(status {status}); it keeps building, try again later"
                    )
                time.sleep(poll)
            self._vector_index[dim] = True
        return name

    def _vector_search(self, query, k, filters, exclude_item) -> tuple[list, np.ndarray]:
        pipeline = vector_search_pipeline(
            query,
            model_id=self._require_model(),
            k=k,
            index=vector_index_name(self.latent_dim),
            filters=filters,
            exclude_item=exclude_item,
        )
        with self._errors("vector search"):
            rows = list(self.embeddings.aggregate(pipeline))
        return [r["item_id"] for r in rows], np.asarray([r["score"] for r in rows], np.float32)

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

    # -- queries --
    def recommend(
        self,
        item_id=None,
        *,
        vector=None,
        image=None,
        k: int = 10,
        filters: dict | None = None,
    ) -> pd.DataFrame:
        """The ``k`` items nearest to a stored item (itself excluded), a vector or an image.

        Same arguments and the same table (rank, id, score, then the item's catalogue
        columns) as :meth:`MemoryStore.recommend`.
        """
        check_query(item_id, vector, image, k)
        self._require_model()
        if image is not None:
            vector = image_vector(self.model, image)
        if self._use_vector_search():
            if item_id is not None:
                with self._errors("reading a vector"):
                    doc = self.embeddings.find_one(
                        {"model_id": self.model_id, "item_id": _item_id(_as_id(item_id))},
                        {"vector": 1},
                    )
                if doc is None:
                    raise RecsysError(f"unknown id {item_id!r}: not stored for {self.model_id}")
                query = l2_normalize(decode_vectors([doc["vector"]], self.latent_dim)[0])
                exclude = _item_id(_as_id(item_id))
            else:
                query, exclude = check_vector(vector, self.latent_dim), None
            ids, scores = self._vector_search(query, k, filters, exclude)
            return self._table(ids, scores)
        data = self._load()
        exclude = None
        if item_id is not None:
            position = self._position(data, item_id)
            query, exclude = data["vectors"][position], np.array([position])
        else:
            query = check_vector(vector, data["vectors"].shape[1])
        idx, scores = top_k(query, data["vectors"], k, exclude, self._mask(data["labels"], filters))
        found = np.isfinite(scores[0])
        return self._table(list(data["ids"][idx[0][found]]), scores[0][found], data["catalog"])

    def _table(self, ids: list, scores: np.ndarray, catalog=False) -> pd.DataFrame:
        ids_arr = np.asarray([_plain(i) for i in ids]) if len(ids) else np.asarray([], np.int64)
        table = pd.DataFrame(
            {"rank": np.arange(1, len(ids) + 1), "id": ids_arr, "score": scores.astype(np.float32)}
        )
        if catalog is False:
            catalog = (self.model_doc() or {}).get("catalog")
        with self._errors("reading the items"):
            docs = list(
                self.items.find(
                    {"catalog": catalog, "item_id": {"$in": [_item_id(i) for i in ids]}},
                    {"_id": 0, "catalog": 0},
                )
            )
        meta = pd.DataFrame.from_records(docs) if docs else pd.DataFrame({"item_id": []})
        meta = meta.set_index("item_id").reindex(ids_arr).reset_index(drop=True)
        return pd.concat([table, meta.drop(columns=["image_path"], errors="ignore")], axis=1)


def _as_id(item_id):
    """A CLI id such as ``"21379"`` as the integer it stands for."""
    if isinstance(item_id, str) and item_id.strip().lstrip("-").isdigit():
        return int(item_id)
    return item_id
