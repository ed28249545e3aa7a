"""MongoDB store: catalogues, models and embeddings in MongoDB, "products like this one".

One database per project setting (``database=`` or ``$RECSYS_NB_MONGO_DB``, default
``recsys_nb``) on the deployment of ``$MONGODB_URI`` (Atlas or any mongod), else on the
local mongod of :mod:`recsys_nb.mongod`. The database holds the whole catalogue, so a
second machine with only the URI gets recommendations, the widget, the map and the
exports: every item's columns and a JPEG thumbnail (once per catalogue, shared by
every model), the models themselves (GridFS: ``model.keras`` and ``meta.json``, found
by name) and one vector per model and item.

The modules:

- :mod:`.schema`: the collections, their validators and indexes;
- :mod:`.codecs`: BSON binary vectors and plain values;
- :mod:`.catalog`: a catalogue's content key, its item documents and thumbnails;
- :mod:`.writer`: ``index`` / ``index_embeddings`` (checked first, then idempotent,
  resumable bulk writes, :mod:`.bulk`);
- :mod:`.models`: model files in GridFS, resolution by name, the list of models;
- :mod:`.atlas`: the Atlas Vector Search index and ``$vectorSearch``;
- :mod:`.queries`: cached exact search, the catalogue table, thumbnails;
- :mod:`.mongo`: :class:`MongoStore`, which puts them together on top of
  :class:`recsys_nb.protocol.StoreBase` (the read interface of every store).

Queries (:meth:`MongoStore.recommend`) use Atlas Vector Search (``$vectorSearch``,
cosine) when the deployment has a queryable vector index for the model's latent size
(:meth:`MongoStore.create_vector_index`), else exact cosine in numpy over the model's
vectors, the same ids as :class:`~recsys_nb.recommend.MemoryStore`. The local mongod
(MongoDB 6.0 Community) has no ``$vectorSearch``.
"""

from __future__ import annotations

from .. import settings
from .atlas import (
    CANDIDATES_PER_RESULT,
    MAX_CANDIDATES,
    filter_query,
    num_candidates,
    vector_index_definition,
    vector_index_name,
    vector_search_pipeline,
)
from .catalog import catalog_key
from .codecs import (
    VECTOR_DTYPE_BYTE,
    VECTOR_HEADER,
    decode_vector,
    decode_vectors,
    encode_vector,
    encode_vectors,
)
from .mongo import MongoStore
from .schema import (
    CATALOGS,
    EMBEDDINGS,
    FILTER_FIELDS,
    ITEMS,
    MODEL_FILES,
    MODELS,
    NOT_LABELS,
    THUMBNAILS,
    VALIDATORS,
)
from .writer import BATCH_SIZE, check_vectors

DB_ENV = settings.DB_ENV
DEFAULT_DB = settings.DEFAULT_DB

__all__ = [
    "BATCH_SIZE",
    "CANDIDATES_PER_RESULT",
    "CATALOGS",
    "DB_ENV",
    "DEFAULT_DB",
    "EMBEDDINGS",
    "FILTER_FIELDS",
    "ITEMS",
    "MAX_CANDIDATES",
    "MODELS",
    "MODEL_FILES",
    "NOT_LABELS",
    "THUMBNAILS",
    "VALIDATORS",
    "VECTOR_DTYPE_BYTE",
    "VECTOR_HEADER",
    "MongoStore",
    "catalog_key",
    "check_vectors",
    "decode_vector",
    "decode_vectors",
    "encode_vector",
    "encode_vectors",
    "filter_query",
    "num_candidates",
    "vector_index_definition",
    "vector_index_name",
    "vector_search_pipeline",
]
