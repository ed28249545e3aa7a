"""Unordered bulk writes with deterministic ``_id`` s: a document already there is kept
(insert) or replaced (upsert); duplicate keys mean "stored already", any other error
names the first refused item (the URI's secrets scrubbed out)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

from ..errors import RecsysError

WRITERS = 2  # item batches in flight (vectors: one; see benchmarks/mongo_store.py)


class BulkWrites:
    """The bulk-write helpers of :class:`~recsys_nb.store.MongoStore` (a mixin)."""

    def _write(self, collection, docs: list[dict], overwrite: bool, what: str) -> None:
        if not docs:
            return
        if overwrite:
            self._upsert(collection, docs, what)
        else:  # new documents: inserts are ~4x faster than upserts
            self._insert(collection, docs, what)

    def _pipeline(
        self,
        jobs: Iterable[tuple[Callable[[], None], int]],
        after: Callable[[int], None],
        writers: int = WRITERS,
    ) -> None:
        """Run write jobs ``(write, n)``, up to ``writers`` at once, in threads.

        The jobs are built lazily, so building the next batch's documents overlaps the
        writes in flight. ``after(n)`` is called in order as each job ends; the first
        error is raised once the writes in flight have ended.
        """
        from concurrent.futures import ThreadPoolExecutor

        pending: deque = deque()
        with ThreadPoolExecutor(writers, thread_name_prefix="recsys-nb-write") as pool:
            try:
                for write, n in jobs:
                    if len(pending) >= writers:
                        done, size = pending.popleft()
                        done.result()
                        after(size)
                    pending.append((pool.submit(write), n))
                while pending:
                    done, size = pending.popleft()
                    done.result()
                    after(size)
            except BaseException:
                for future, _ in pending:
                    future.cancel()
                raise

    def _insert(self, collection, docs: list[dict], what: str) -> None:
        """Unordered insert of new documents; one already there (same ``_id``) is kept.

        ``_id`` is deterministic, so a document that another writer inserted meanwhile
        holds the same content.
        """
        from pymongo.errors import BulkWriteError

        try:
            collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            self._refused(what, docs, exc.details.get("writeErrors", []))

    def _refused(self, what: str, docs: list[dict], errors: list[dict]) -> None:
        """Raise for write errors other than duplicate keys (which mean: already stored)."""
        from ..mongod import scrub

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
