"""Collections, their validators and indexes.

``catalogs``
    one per catalogue, keyed by its content (ids and image-file fingerprints, not the
    spelling of its path): ``sources`` (paths it was indexed from), ``n_items``,
    ``columns``, ``thumbnails``, ``version`` (bumped by every write, for caches).
``items``
    one per catalogue item, ``_id`` = catalogue key + item id: ``catalog``, ``item_id``,
    ``pos`` (its row) and every catalogue column (scalars: text, numbers, booleans).
``thumbnails``
    one per item, the same ``_id``: ``data`` (JPEG bytes at the widget's size, BSON
    binary), ``mime``, ``width``, ``height``. Written before the item, so that an item
    never lacks its picture.
``models``
    one per model id: ``name``, ``latent_dim``, ``meta`` (``meta.json``), ``catalog``,
    ``files`` (GridFS ids of ``model.keras`` and ``meta.json``), ``evaluation``,
    ``n_items``, ``complete``, ``version``.
``embeddings``
    one per (``model_id``, ``item_id``), unique: ``vector`` (float32, BSON binary vector
    subtype 9), ``dim``, ``pos`` and the label fields used as filters.
``model_files.files`` / ``model_files.chunks``
    the GridFS bucket holding the models' files.
"""

from __future__ import annotations

import contextlib

from ..protocol import THUMB_MAX_BYTES, THUMB_MIME, THUMB_SIZE

CATALOGS, ITEMS, THUMBNAILS, MODELS, EMBEDDINGS = (
    "catalogs",
    "items",
    "thumbnails",
    "models",
    "embeddings",
)
MODEL_FILES = "model_files"  # GridFS bucket
ID_TYPES = ["int", "long", "string"]
# Catalogue columns are scalars; a nested document or an array is a malformed row.
SCALARS = ["string", "int", "long", "double", "decimal", "bool", "null", "date"]
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
MIN_THUMB_BYTES = 64  # smaller than any real JPEG

VALIDATORS = {
    CATALOGS: {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["n_items"],
            "properties": {
                "_id": {"bsonType": "string"},
                "n_items": {"bsonType": ["int", "long"], "minimum": 0},
                "sources": {"bsonType": "array", "items": {"bsonType": "string"}},
                "columns": {"bsonType": "array", "items": {"bsonType": "string"}},
                "thumbnails": {"bsonType": "bool"},
                "version": {"bsonType": ["int", "long"]},
            },
        }
    },
    ITEMS: {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["catalog", "item_id", "pos"],
            "properties": {
                "_id": {"bsonType": "string"},
                "catalog": {"bsonType": "string"},
                "item_id": {"bsonType": ID_TYPES},
                "pos": {"bsonType": ["int", "long"], "minimum": 0},
                "productDisplayName": {"bsonType": ["string", "null"]},
                "image_path": {"bsonType": ["string", "null"]},
            },
            "additionalProperties": {"bsonType": SCALARS},
        }
    },
    THUMBNAILS: {
        "$and": [
            {
                "$jsonSchema": {
                    "bsonType": "object",
                    "required": ["catalog", "item_id", "data", "mime", "width", "height"],
                    "additionalProperties": False,
                    "properties": {
                        "_id": {"bsonType": "string"},
                        "catalog": {"bsonType": "string"},
                        "item_id": {"bsonType": ID_TYPES},
                        "data": {"bsonType": "binData"},
                        "mime": {"enum": [THUMB_MIME]},
                        "width": {
                            "bsonType": ["int", "long"],
                            "minimum": 1,
                            "maximum": THUMB_SIZE[0],
                        },
                        "height": {
                            "bsonType": ["int", "long"],
                            "minimum": 1,
                            "maximum": THUMB_SIZE[1],
                        },
                    },
                }
            },
            # a thumbnail, not a photo: a few KB, at most THUMB_MAX_BYTES
            {
                "$expr": {
                    "$and": [
                        {"$gte": [{"$binarySize": "$data"}, MIN_THUMB_BYTES]},
                        {"$lte": [{"$binarySize": "$data"}, THUMB_MAX_BYTES]},
                    ]
                }
            },
        ]
    },
    MODELS: {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["name", "latent_dim", "meta"],
            "properties": {
                "name": {"bsonType": "string"},
                "latent_dim": {"bsonType": ["int", "long"], "minimum": 1, "maximum": 65536},
                "meta": {"bsonType": "object"},
                "catalog": {"bsonType": ["string", "null"]},
                "files": {"bsonType": "object"},
                "evaluation": {"bsonType": ["object", "null"]},
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
            # one vector per model and item, whoever writes: _id is "<model_id>:<item_id>"
            {
                "$expr": {
                    "$eq": [
                        "$_id",
                        {"$concat": ["$model_id", ":", {"$toString": "$item_id"}]},
                    ]
                }
            },
        ]
    },
}


def model_vectors(model_id: str) -> dict:
    """The query for one model's vectors: an ``_id`` range, read through the ``_id`` index.

    ``_id`` is ``"<model_id>:<item_id>"`` and ``";"`` follows ``":"``; the ``model_id``
    test keeps out a model whose id extends this one's with a colon.
    """
    return {"_id": {"$gte": f"{model_id}:", "$lt": f"{model_id};"}, "model_id": model_id}


def vector_id(model_id: str, item_id) -> str:
    """The ``_id`` of a model's vector for an item."""
    return f"{model_id}:{item_id}"


def ensure_schema(db) -> None:
    """Collections with their validators, and the unique indexes (idempotent)."""
    existing = set(db.list_collection_names())
    for name, validator in VALIDATORS.items():
        options = {"validator": validator, "validationLevel": "strict", "validationAction": "error"}
        if name in existing:
            db.command("collMod", name, **options)
        else:
            with contextlib.suppress(Exception):  # created meanwhile by another process
                db.create_collection(name, **options)
    # embeddings need no index beyond _id ("<model_id>:<item_id>", unique by construction):
    # a model's vectors are an _id range (model_vectors); a second index halves the writes
    db[ITEMS].create_index([("catalog", 1), ("item_id", 1)], unique=True, name="catalog_item")
    db[THUMBNAILS].create_index([("catalog", 1), ("item_id", 1)], unique=True, name="catalog_item")
    db[MODELS].create_index([("name", 1)], name="name")
