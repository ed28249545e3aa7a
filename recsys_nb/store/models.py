"""Models in the database: their files in GridFS, resolution by name, the list of models.

``MongoStore.index`` stores a model's ``model.keras`` and ``meta.json`` (which holds the
latent transform) in the GridFS bucket ``model_files``, each under a deterministic id
(model id, file name, content hash), so that a second index finds them there and a
crashed upload (chunks without their file document) is cleaned up and done again. A
store bound to a model by name (``MongoStore(uri, model="products")``: the latest
version; or a model id) loads the encoder from there on first use, into the cache
folder (``<home>/data/cache/mongo-models/<model id>/``), checked by its hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from .. import settings
from ..errors import RecsysError
from .schema import MODEL_FILES

MODEL_FILE_NAMES = ("model.keras", "meta.json")
UPLOAD_WAIT_S = 60.0


def read_model_files(model) -> dict[str, bytes]:
    """The files that make a model: ``model.keras`` and ``meta.json``, read before writing.

    A pretrained network (the ``cnn`` embedding) is its ``meta.json`` alone: its weights
    come with the package's dependencies on every machine.
    """
    if model.meta.get("kind") == "pretrained":
        return {"meta.json": json.dumps(model.meta, sort_keys=True).encode()}
    out = {}
    for name in MODEL_FILE_NAMES:
        path = Path(model.path) / name
        try:
            out[name] = path.read_bytes()
        except OSError as exc:
            raise RecsysError(f"cannot read {path}: {exc}; nothing was written") from None
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_id(model_id: str, name: str, digest: str) -> str:
    return f"{model_id}/{name}@{digest[:16]}"


def latest_first(doc: dict) -> tuple:
    meta = doc.get("meta") or {}
    return (str(meta.get("trained_at") or ""), str(doc.get("created_at") or ""), doc["_id"])


def settings_of(meta: dict) -> dict:
    """The training settings worth listing (``recipe`` where the model has one)."""
    keys = ("dataset", "input_shape", "latent_dim", "filters", "depth", "loss", "epochs")
    out = {k: meta[k] for k in keys if k in meta}
    out.update(meta.get("recipe") or {})
    for k in ("train_loss", "val_loss", "trained_at"):
        if k in meta:
            out[k] = meta[k]
    return out


class StoredModels:
    """The GridFS part of :class:`~recsys_nb.store.MongoStore` (a mixin)."""

    def _bucket(self):
        import gridfs

        return gridfs.GridFSBucket(self.db, bucket_name=MODEL_FILES)

    def _put_model_files(self, model_id: str, files: dict[str, bytes]) -> dict:
        """Upload the files that are not stored yet; returns ``{name: {id, sha256, length}}``."""
        from pymongo.errors import DuplicateKeyError

        bucket = self._bucket()
        stored = self.db[f"{MODEL_FILES}.files"]
        out = {}
        for name, data in files.items():
            digest = sha256(data)
            fid = file_id(model_id, name, digest)
            meta = {"model_id": model_id, "name": name, "sha256": digest}
            deadline = time.monotonic() + UPLOAD_WAIT_S
            while stored.find_one({"_id": fid}, {"_id": 1}) is None:
                # chunks of an upload that was killed have no file document: start again
                self.db[f"{MODEL_FILES}.chunks"].delete_many({"files_id": fid})
                try:
                    bucket.upload_from_stream_with_id(
                        fid, f"{model_id}/{name}", data, metadata=meta
                    )
                except DuplicateKeyError:  # another indexer is uploading the same file
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            out[name.replace(".", "_")] = {"id": fid, "sha256": digest, "length": len(data)}
        return out

    def _drop_model_files(self, model_id: str, keep=()) -> None:
        bucket = self._bucket()
        for doc in self.db[f"{MODEL_FILES}.files"].find({"metadata.model_id": model_id}):
            if doc["_id"] not in keep:
                bucket.delete(doc["_id"])

    # -- resolution --
    def find_model(self, model: str) -> dict | None:
        """The model document for a model id, else the latest version of a model name."""
        with self._errors("cannot read the models"):
            doc = self.models.find_one({"_id": model})
            if doc is not None:
                return doc
            docs = list(self.models.find({"name": model, "n_items": {"$gt": 0}}))
        if not docs:
            return None
        complete = [d for d in docs if d.get("complete")] or docs
        return max(complete, key=latest_first)

    def _stored_model(self, doc: dict):
        """The model of a model document, from GridFS (cached on disk, checked by hash)."""
        from ..model import load_model

        meta = doc.get("meta") or {}
        if meta.get("kind") == "pretrained":
            from ..cnn import load_cnn

            return load_cnn(size=int(meta["input_shape"][0]), colour=meta.get("colour", "rgb"))
        files = doc.get("files") or {}
        names = {n: files.get(n.replace(".", "_")) for n in MODEL_FILE_NAMES}
        if not all(names.values()):
            raise RecsysError(
                f"model {doc['_id']} has no stored model files in database "
                f"{self.database_name!r}: index it again (recsys-nb index --model ...) to "
                "store them, or give the model folder"
            )
        folder = settings.cache_dir() / "mongo-models" / doc["_id"] / doc.get("name", "model")
        if all(
            (folder / n).is_file() and sha256((folder / n).read_bytes()) == f["sha256"]
            for n, f in names.items()
        ):
            return load_model(folder)
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        bucket = self._bucket()
        with self._errors(f"reading model {doc['_id']} from GridFS"):
            for n, f in names.items():
                data = bucket.open_download_stream(f["id"]).read()
                if sha256(data) != f["sha256"]:
                    raise RecsysError(f"model {doc['_id']}: stored {n} does not match its hash")
                (tmp / n).write_bytes(data)
        shutil.rmtree(folder, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process put it there meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
        return load_model(folder)

    # -- listing --
    def list_models(self) -> list[dict]:
        """Every stored model: name, id, latent size, items, training settings, evaluation."""
        with self._errors("cannot read the models"):
            docs = list(self.models.find({}))
        out = []
        for doc in sorted(docs, key=lambda d: (d.get("name", ""), latest_first(d)), reverse=True):
            meta = doc.get("meta") or {}
            files = doc.get("files") or {}
            out.append(
                {
                    "name": doc.get("name"),
                    "model_id": doc["_id"],
                    "latent_dim": doc.get("latent_dim"),
                    "n_items": doc.get("n_items"),
                    "complete": bool(doc.get("complete")),
                    "files": [n for n in MODEL_FILE_NAMES if files.get(n.replace(".", "_"))],
                    "catalog": doc.get("catalog"),
                    "source": doc.get("source"),
                    "indexed_at": doc.get("indexed_at"),
                    "settings": settings_of(meta),
                    "evaluation": doc.get("evaluation"),
                }
            )
        out.sort(key=lambda m: m["name"] or "")
        return out

    def set_evaluation(self, report: dict, model_id: str | None = None) -> None:
        """Keep an evaluation report (:func:`recsys_nb.evaluate`) with a stored model."""
        model_id = model_id or self._require_model()
        report = json.loads(json.dumps(report, default=float))  # numpy numbers, NaN-safe
        with self._errors(f"writing the evaluation of {model_id}"):
            self.models.update_one({"_id": model_id}, {"$set": {"evaluation": report}})
