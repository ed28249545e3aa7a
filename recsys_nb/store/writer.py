"""Writes: a catalogue's items and thumbnails, a model's files and vectors.

Everything is checked before the first write: every vector (finite, not zero, the
model's latent size, ids unique), every image that needs a thumbnail (read and decoded;
an unreadable one stops the index), the model's files. Then, with deterministic
``_id`` s, unordered bulk batches: a catalogue's thumbnails and items (a thumbnail
before its item, so that no item lacks its picture), the model's files (GridFS) and
document, its vectors. Running twice, two at once, or again after a crash (kill -9,
lost connection) leaves exactly one document per item, thumbnail and vector.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..embed import Embeddings, embed_catalog
from ..errors import RecsysError
from ..model import load_model
from .bulk import BulkWrites
from .catalog import KEY_PREFIX, ThumbnailSpool, catalog_key, image_sources, item_doc, item_records
from .codecs import encode_vectors, item_ids, plain_records
from .models import read_model_files
from .schema import NOT_LABELS, model_vectors, vector_id

log = logging.getLogger("recsys_nb.store")

BATCH_SIZE = 2000
VECTOR_WRITERS = 2  # vector batches in flight (benchmarks/mongo_store.py)


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
        others = f" ({len(where)} items in all)" if len(where) > 1 else ""
        raise RecsysError(
            f"item {ids[where[0]]}: vector has NaN or infinite values{others}; nothing was written"
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


def _label_records(meta: pd.DataFrame, ids: list) -> list[dict]:
    columns = [c for c in meta.columns if c not in NOT_LABELS]
    if not columns:
        return [{} for _ in ids]
    return plain_records(meta.reindex(pd.Index(ids))[columns])


class Writer(BulkWrites):
    """The write part of :class:`~recsys_nb.store.MongoStore` (a mixin)."""

    def index(
        self,
        model,
        catalog=None,
        *,
        embeddings: Embeddings | None = None,
        thumbnails: bool = True,
        evaluation: dict | None = None,
        batch_size: int = BATCH_SIZE,
        resume: bool = True,
        replace: bool = False,
        on_batch: Callable[[int, int], None] | None = None,
        on_items: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Embed ``catalog`` with ``model`` and write the catalogue, the model and its vectors.

        The catalogue's items (every column) and, with ``thumbnails``, a JPEG thumbnail of
        each image are written once per catalogue and shared by every model indexed on
        it; the model's files go to GridFS, so that a store elsewhere can use it by name.
        See :meth:`index_embeddings`; the vectors come from :func:`embed_catalog` (cached
        in the model folder) unless ``embeddings`` are given.
        """
        model = load_model(model)
        if embeddings is None:
            embeddings = embed_catalog(model, catalog)
        meta = dict(model.meta)
        meta.setdefault("model_id", model.name)
        images = embeddings.meta.get("image_path")
        if images is None and thumbnails:  # no image files (Fashion-MNIST): the pixels
            images = _pixel_images(model, catalog, embeddings)
        result = self.index_embeddings(
            embeddings,
            latent_dim=model.latent_dim,
            name=model.name,
            path=str(model.path),
            meta=meta,
            images=images,
            thumbnails=thumbnails,
            model=model,
            evaluation=evaluation,
            batch_size=batch_size,
            resume=resume,
            replace=replace,
            on_batch=on_batch,
            on_items=on_items,
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
        images=None,
        thumbnails: bool = True,
        model=None,
        evaluation: dict | None = None,
        batch_size: int = BATCH_SIZE,
        resume: bool = True,
        replace: bool = False,
        on_batch: Callable[[int, int], None] | None = None,
        on_items: Callable[[int, int], None] | None = None,
    ) -> dict:
        """Write one model's vectors for a catalogue; idempotent and resumable.

        ``images`` (paths or bytes per item, or ``{id: path}``): they identify the
        catalogue with the ids (without them, the ids and ``embeddings.source`` do), and
        thumbnails are made of them (unless ``thumbnails=False``). ``model``: a
        :class:`TrainedModel` whose files are stored in GridFS.

        Everything is checked before the first write; then the items (and thumbnails)
        and vectors that are not stored yet (all of them with ``resume=False``) are
        written in unordered bulk batches of ``batch_size``. A write that fails half-way
        is completed by running the same call again. ``replace`` first deletes the
        model's vectors (needed to index the same model id with another catalogue, or
        after its files changed). ``on_items`` / ``on_batch`` are called after each
        batch of items / vectors with (done, total).
        """
        started = time.monotonic()
        model_id = str(embeddings.model_id)
        dim = int(latent_dim)
        ids = item_ids(embeddings.ids)
        vectors = check_vectors(ids, embeddings.vectors, dim)
        source = str(embeddings.source)
        sources = None if images is None else image_sources(images, ids)
        key = catalog_key(ids, sources, source)
        files = read_model_files(model) if model is not None else None
        meta = dict(meta or {"model_id": model_id})
        overwrite = not resume or replace
        what = f"writing model {model_id} to {self.location} (database {self.database_name!r})"
        spool = None
        try:
            with self._errors(what):
                old = self.models.find_one(
                    {"_id": model_id}, {"latent_dim": 1, "catalog": 1, "files": 1}
                )
                legacy = self._check_old(old, model_id, dim, key, source, files, replace)
                stored_items = set() if overwrite else self._stored(self.items, key)
                item_rows = [r for r, i in enumerate(ids) if i not in stored_items]
                if sources is not None and thumbnails:
                    thumbs = self.thumbnails_collection
                    stored_thumbs = set() if overwrite else self._stored(thumbs, key)
                    thumb_rows = [r for r, i in enumerate(ids) if i not in stored_thumbs]
                    spool = ThumbnailSpool(ids, sources, thumb_rows)  # reads every image first
                # -- nothing was written before this line --
                self.ensure_schema()
                if replace:
                    self.embeddings.delete_many(model_vectors(model_id))
                stored_files = self._put_model_files(model_id, files) if files else None
                if stored_files and replace:
                    self._drop_model_files(model_id, keep={f["id"] for f in stored_files.values()})
                self._write_catalog(key, source, ids, embeddings.meta, spool is not None)
                self._write_model_doc(
                    model_id, name, path, dim, meta, key, source, len(ids), stored_files, evaluation
                )
                if legacy and self.models.find_one({"catalog": legacy}, {"_id": 1}) is None:
                    self.items.delete_many({"catalog": legacy})  # items of the old format
                job = (batch_size, overwrite, what)
                self._write_items(key, ids, embeddings.meta, item_rows, spool, job, on_items)
                written, skipped = self._write_vectors(
                    model_id, ids, vectors, embeddings.meta, dim, job, on_batch
                )
                stored_n = self.embeddings.count_documents(model_vectors(model_id))
                self.models.update_one(
                    {"_id": model_id},
                    {
                        "$set": {"complete": stored_n == len(ids), "indexed_at": _now()},
                        "$inc": {"version": 1},
                    },
                )
        finally:
            if spool is not None:
                spool.close()
        self._cache.pop(model_id, None)
        result = {
            "model_id": model_id,
            "database": self.database_name,
            "catalog": key,
            "n_items": len(ids),
            "items_written": len(item_rows),
            "thumbnails_written": len(spool) if spool is not None else 0,
            "written": written,
            "skipped": skipped,
            "stored": stored_n,
            "seconds": round(time.monotonic() - started, 3),
        }
        log.info("indexed %s", result)
        return result

    # -- steps --
    def _check_old(self, old, model_id, dim, key, source, files, replace) -> str | None:
        """Refuse what would mix; returns the catalogue of a model indexed by an earlier
        version (a folder path, not a content key) when this is the same folder."""
        if old is None:
            return None
        if int(old["latent_dim"]) != dim:
            raise RecsysError(
                f"model {model_id} is stored with latent size {old['latent_dim']}, not "
                f"{dim}: a re-trained model needs a new model id"
            )
        legacy = old.get("catalog")
        if legacy is None or legacy.startswith(KEY_PREFIX) or not _same_folder(legacy, source):
            legacy = None
        if replace:
            return legacy
        if old.get("catalog") not in (None, key) and legacy is None:
            raise RecsysError(
                f"model {model_id} is indexed with another catalogue ({old['catalog']}, not "
                f"{key}: other ids or images): pass replace=True (--replace) to index it "
                "with this one"
            )
        from .models import sha256

        before = {n: f.get("sha256") for n, f in (old.get("files") or {}).items()}
        now = {n.replace(".", "_"): sha256(d) for n, d in (files or {}).items()}
        changed = [n for n in now if before.get(n) not in (None, now[n])]
        if changed:
            raise RecsysError(
                f"model {model_id} is stored with other files ({', '.join(changed)} changed, "
                "e.g. a refitted latent transform): its stored vectors would not match; pass "
                "replace=True (--replace) to store this version and its vectors"
            )
        return legacy

    def _stored(self, collection, key: str) -> set:
        return {d["item_id"] for d in collection.find({"catalog": key}, {"_id": 0, "item_id": 1})}

    def _write_catalog(self, key, source, ids, meta, thumbnails: bool) -> None:
        columns = [str(c) for c in meta.columns if c != "image_path"]
        now = _now()
        update = {
            "$set": {"n_items": len(ids), "columns": columns, "updated_at": now},
            "$addToSet": {"sources": source},
            "$setOnInsert": {"created_at": now},
            "$inc": {"version": 1},
        }
        if thumbnails:
            update["$set"]["thumbnails"] = True
        else:
            update["$setOnInsert"]["thumbnails"] = False
        self.catalogs.update_one({"_id": key}, update, upsert=True)

    def _write_model_doc(self, model_id, name, path, dim, meta, key, source, n, files, evaluation):
        now = _now()
        fields = {
            "name": name or model_id,
            "path": path,
            "latent_dim": dim,
            "meta": meta,
            "catalog": key,
            "source": source,
            "n_items": n,
            "complete": False,
            "updated_at": now,
        }
        if files:
            fields["files"] = files
        if evaluation is not None:
            import json

            fields["evaluation"] = json.loads(json.dumps(evaluation, default=float))
        self.models.update_one(
            {"_id": model_id},
            {"$set": fields, "$setOnInsert": {"created_at": now}, "$inc": {"version": 1}},
            upsert=True,
        )

    def _write_items(self, key, ids, meta, rows, spool, job, on_items):
        """Thumbnails, then items, batch by batch: an item is written after its picture."""
        batch_size, overwrite, what = job
        records = item_records(meta, ids)
        thumb_rows = [r for r in range(len(ids)) if spool is not None and r in spool]
        # thumbnails of items already stored (a catalogue first indexed without images)
        in_rows = set(rows)
        extra = [r for r in thumb_rows if r not in in_rows]
        for start in range(0, len(extra), batch_size):
            docs = [spool.doc(r, key, ids[r]) for r in extra[start : start + batch_size]]
            self._write(self.thumbnails_collection, docs, overwrite, what)
        done = len(ids) - len(rows)

        def jobs():
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                thumbs = (
                    [spool.doc(r, key, ids[r]) for r in batch if r in spool]
                    if spool is not None
                    else []
                )
                docs = [item_doc(key, ids[r], r, records[r]) for r in batch]
                yield (lambda t=thumbs, d=docs: self._write_item_batch(key, t, d, job)), len(docs)

        def after(n: int) -> None:
            nonlocal done
            done += n
            if on_items is not None:
                on_items(done, len(ids))

        self._pipeline(jobs(), after)

    def _write_item_batch(self, key, thumbs: list, docs: list, job) -> None:
        """A batch's thumbnails, then its items: no item is stored without its picture."""
        _, overwrite, what = job
        self._write(self.thumbnails_collection, thumbs, overwrite, what)
        self._write(self.items, docs, overwrite, what)
        self.catalogs.update_one({"_id": key}, {"$inc": {"version": 1}})

    def _write_vectors(self, model_id, ids, vectors, meta, dim, job, on_batch) -> tuple[int, int]:
        batch_size, overwrite, what = job
        todo = np.arange(len(ids))
        if not overwrite:
            stored = {
                d["item_id"]
                for d in self.embeddings.find(model_vectors(model_id), {"_id": 0, "item_id": 1})
            }
            todo = np.array([i for i, item in enumerate(ids) if item not in stored], dtype=int)
        labels = _label_records(meta, ids)
        written = 0

        def jobs():
            for start in range(0, len(todo), batch_size):
                rows = todo[start : start + batch_size]
                encoded = encode_vectors(vectors[rows])  # one buffer, then a slice a row
                docs = [
                    {
                        "_id": vector_id(model_id, ids[r]),
                        "model_id": model_id,
                        "item_id": ids[r],
                        "pos": r,
                        "dim": dim,
                        "vector": v,
                        **labels[r],
                    }
                    for r, v in zip(rows.tolist(), encoded, strict=True)
                ]
                yield (lambda d=docs: self._write(self.embeddings, d, overwrite, what)), len(docs)

        def after(n: int) -> None:
            nonlocal written
            written += n
            self.models.update_one({"_id": model_id}, {"$inc": {"version": 1}})
            if on_batch is not None:
                on_batch(len(ids) - len(todo) + written, len(ids))

        self._pipeline(jobs(), after, writers=VECTOR_WRITERS)
        return written, len(ids) - len(todo)

    def drop_model(self, model_id: str | None = None) -> int:
        """Delete a model, its vectors and its files; returns the number of vectors deleted."""
        model_id = model_id or self._require_model()
        with self._errors(f"deleting model {model_id}"):
            n = self.embeddings.delete_many(model_vectors(model_id)).deleted_count
            self.models.delete_one({"_id": model_id})
            self._drop_model_files(model_id)
        self._cache.pop(model_id, None)
        return n


def _pixel_images(model, catalog, embeddings: Embeddings) -> list:
    """The catalogue's images as pixel arrays, aligned with the embeddings' ids."""
    from ..embed import load_items

    data = load_items(model, catalog)
    if not np.array_equal(np.asarray(data.ids), np.asarray(embeddings.ids)):
        raise RecsysError(
            f"the catalogue {embeddings.source} has no image files and its pixels do not match "
            "the embeddings' ids: pass thumbnails=False (--no-thumbnails)"
        )
    return list(data.images)


def _same_folder(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _now():
    return dt.datetime.now(dt.UTC)
