"""The MongoDB store: connection, binding to a model, and the pieces put together.

:class:`MongoStore` is :class:`~recsys_nb.protocol.StoreBase` (the read interface every
store offers) over MongoDB, with the writes of :mod:`.writer`, the reads of
:mod:`.queries`, the stored models of :mod:`.models` and Atlas Vector Search of
:mod:`.atlas`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .. import settings
from ..errors import RecsysError
from ..model import TrainedModel, load_model
from ..mongod import URI_ENV, redact_uri, resolve_uri, scrub
from ..protocol import StoreBase
from .atlas import AtlasSearch
from .models import StoredModels
from .queries import Queries
from .schema import CATALOGS, EMBEDDINGS, ITEMS, MODELS, THUMBNAILS, ensure_schema, model_vectors
from .writer import Writer


class MongoStore(Queries, Writer, StoredModels, AtlasSearch, StoreBase):
    """Catalogues, models and embeddings in MongoDB; the read interface of :class:`MemoryStore`.

    ``uri``: a MongoDB URI, else ``$MONGODB_URI``, else the local mongod (started if
    needed, ``start=False`` to refuse). ``model``: a model name (the latest version
    stored under it), a model id, a model folder or a :class:`TrainedModel`; a model
    found in the database needs no files on this machine (its encoder comes from
    GridFS when an image is queried). ``search``: ``"auto"`` (vector search where the
    deployment has the index, else exact), ``"exact"`` or ``"vector"``.
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
        self._model: TrainedModel | None = None
        self._model_doc: dict | None = None
        self.model_id: str | None = None
        self.latent_dim: int | None = None
        self._cache: dict = {}
        self._meta_cache: dict = {}
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
        self.catalogs = self.db[CATALOGS]
        self.items = self.db[ITEMS]
        self.thumbnails_collection = self.db[THUMBNAILS]
        self.models = self.db[MODELS]
        self.embeddings = self.db[EMBEDDINGS]
        if model is not None:
            self.use(model)

    @classmethod
    def from_model(cls, model, catalog=None, *, index: bool = False, **kwargs) -> MongoStore:
        """A store bound to ``model``; ``index=True`` embeds and writes its catalogue first."""
        store = cls(**kwargs)
        if index:
            model = load_model(model)
            store.index(model, catalog)
        store.use(model)
        store.require_vectors(catalog)
        return store

    def require_vectors(self, catalog=None) -> None:
        """A clear error when the bound model has no vectors in the database."""
        if not self.models.find_one({"_id": self.model_id, "n_items": {"$gt": 0}}, {"_id": 1}):
            path = self._model.path if self._model is not None else self.model_id
            raise RecsysError(
                f"model {self.model_id} has no vectors in database {self.database_name!r} "
                f"at {self.location}: run `recsys-nb index --model {path}"
                + (f" --catalog {catalog}`" if catalog else "`")
            )

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
            ensure_schema(self.db)
        self._schema_ready = True

    # -- models --
    def use(self, model) -> MongoStore:
        """Bind the store to a model: a folder or :class:`TrainedModel` (its encoder is
        local), else a model id or name stored in the database (the latest version of a
        name; the encoder is read from GridFS when needed), else a model name in the
        local models folder."""
        if isinstance(model, TrainedModel) or (
            isinstance(model, (str, Path)) and os.path.isdir(model)
        ):
            return self._bind_local(load_model(model))
        doc = self.find_model(str(model))
        if doc is not None:
            self._model, self._model_doc = None, doc
            self.model_id, self.latent_dim = doc["_id"], int(doc["latent_dim"])
            return self
        if len(Path(str(model)).parts) == 1 and settings.model_dir(str(model)).is_dir():
            return self._bind_local(load_model(model))
        raise RecsysError(
            f"no model {model!r} in database {self.database_name!r} at {self.location} "
            f"(models: {', '.join(self.model_names()) or 'none'}) nor a model folder"
        )

    def _bind_local(self, model: TrainedModel) -> MongoStore:
        self._model, self._model_doc = model, None
        self.model_id = str(model.meta.get("model_id", model.name))
        self.latent_dim = model.latent_dim
        return self

    @property
    def model(self) -> TrainedModel | None:
        """The bound model (``None`` without one); one found in the database is loaded
        from GridFS on first use."""
        if self._model is None and self.model_id is not None:
            doc = self._model_doc or self.model_doc()
            if doc is None:
                raise RecsysError(f"model {self.model_id} is not in the database")
            self._model = self._stored_model(doc)
        return self._model

    @model.setter
    def model(self, value) -> None:
        self._model = value

    @property
    def model_name(self) -> str | None:
        """The bound model's name (``products``), without loading it."""
        if self._model is not None:
            return self._model.name
        doc = self._model_doc or (self.model_doc() if self.model_id is not None else None)
        return None if doc is None else str(doc.get("name") or doc["_id"])

    def model_ids(self) -> list[str]:
        with self._errors("cannot read the models"):
            return [d["_id"] for d in self.models.find({}, {"_id": 1}).sort("_id", 1)]

    def model_names(self) -> list[str]:
        with self._errors("cannot read the models"):
            return sorted({d.get("name", d["_id"]) for d in self.models.find({}, {"name": 1})})

    def model_doc(self, model_id: str | None = None) -> dict | None:
        with self._errors("cannot read the models"):
            return self.models.find_one({"_id": model_id or self._require_model()})

    def _require_model(self) -> str:
        if self.model_id is None:
            raise RecsysError("this store has no model: MongoStore(model=...) or store.use(model)")
        return self.model_id

    def __len__(self) -> int:
        with self._errors("cannot count the vectors"):
            return self.embeddings.count_documents(model_vectors(self._require_model()))
