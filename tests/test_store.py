"""MongoStore against a real local mongod (started by the package in a temporary folder).

Nothing here mocks the database. The one Atlas test runs only where an Atlas URI is given.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pymongo
import pytest

from conftest import kill_when
from recsys_nb import cli
from recsys_nb.embed import Embeddings, embed_catalog
from recsys_nb.errors import RecsysError
from recsys_nb.mongod import LocalMongo, free_port, pid_alive
from recsys_nb.recommend import MemoryStore
from recsys_nb.store import (
    EMBEDDINGS,
    MAX_CANDIDATES,
    MongoStore,
    check_vectors,
    decode_vectors,
    vector_index_definition,
    vector_search_pipeline,
)

ATLAS_URI = os.environ.get("RECSYS_NB_ATLAS_URI") or os.environ.get("MONGODB_URI")


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    """One local mongod for this module, stopped at the end."""
    server = LocalMongo(tmp_path_factory.mktemp("mongo"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        assert server.pid is None


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    monkeypatch.delenv("MONGODB_URI", raising=False)


@pytest.fixture
def store(mongo):
    name = f"t_{uuid.uuid4().hex[:10]}"
    s = MongoStore(mongo.uri, name)
    yield s
    s._client.drop_database(name)
    s.close()


def synthetic(n: int, dim: int = 32, model_id: str = "synthetic-1", seed: int = 0) -> Embeddings:
    rng = np.random.default_rng(seed)
    ids = np.arange(10_000, 10_000 + n, dtype=np.int64)
    meta = pd.DataFrame(
        {
            "gender": rng.choice(["Men", "Women", "Unisex"], n),
            "masterCategory": rng.choice(["Apparel", "Footwear", "Accessories"], n),
            "productDisplayName": [f"product {i}" for i in ids],
            "image_path": [f"/nowhere/{i}.jpg" for i in ids],
        },
        index=pd.Index(ids, name="id"),
    )
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Embeddings(model_id, ids, vectors, meta, f"synthetic-{n}-{seed}")


def stored_vectors(collection, model_id: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    docs = list(collection.find({"model_id": model_id}, {"item_id": 1, "vector": 1}))
    ids = np.array([d["item_id"] for d in docs])
    order = np.argsort(ids)
    return ids[order], decode_vectors([d["vector"] for d in docs], dim)[order]


def assert_exactly(collection, emb: Embeddings, dim: int) -> None:
    """One document per item, each with the item's vector, nothing else."""
    ids, vectors = stored_vectors(collection, emb.model_id, dim)
    assert len(ids) == len(emb.ids) == len(set(ids.tolist()))
    np.testing.assert_array_equal(ids, np.sort(emb.ids))
    order = np.argsort(emb.ids)
    np.testing.assert_array_equal(vectors, emb.vectors[order])


# --- the product model, end to end -------------------------------------------------------


def test_index_and_recommend_match_the_memory_store(store, tiny_product_model, small_catalog):
    result = store.index(tiny_product_model, small_catalog)
    n = result["n_items"]
    assert result["written"] == result["stored"] == n > 250
    memory = MemoryStore.from_model(tiny_product_model, small_catalog)
    store.use(tiny_product_model)
    assert len(store) == n
    for item in memory.ids[:25]:
        a, b = store.recommend(item, k=10), memory.recommend(item, k=10)
        assert list(a.columns) == list(b.columns)
        assert a["id"].tolist() == b["id"].tolist()
        np.testing.assert_allclose(a["score"], b["score"], rtol=1e-5, atol=1e-6)
        pd.testing.assert_frame_equal(a.drop(columns="score"), b.drop(columns="score"))
    for filters in ({"gender": "Women"}, {"masterCategory": ["Footwear", "Accessories"]}):
        a = store.recommend(memory.ids[3], k=7, filters=filters)
        b = memory.recommend(memory.ids[3], k=7, filters=filters)
        assert a["id"].tolist() == b["id"].tolist()
    query = np.random.default_rng(1).normal(size=tiny_product_model.latent_dim)
    assert (
        store.recommend(vector=query, k=5)["id"].tolist()
        == memory.recommend(vector=query, k=5)["id"].tolist()
    )
    image = small_catalog / "images" / f"{memory.ids[0]}.jpg"
    assert (
        store.recommend(image=image, k=5)["id"].tolist()
        == memory.recommend(image=image, k=5)["id"].tolist()
    )
    # ids from the CLI arrive as text
    assert (
        store.recommend(str(memory.ids[0]), k=3)["id"].tolist()
        == memory.recommend(memory.ids[0], k=3)["id"].tolist()
    )
    with pytest.raises(RecsysError, match="unknown id 12345678"):
        store.recommend(12345678)
    with pytest.raises(RecsysError, match="cannot filter on 'colour'"):
        store.recommend(memory.ids[0], filters={"colour": "Red"})
    # the model document carries meta.json and the latent size
    doc = store.model_doc()
    assert doc["latent_dim"] == tiny_product_model.latent_dim
    assert doc["meta"]["model_id"] == tiny_product_model.meta["model_id"]
    assert doc["complete"] is True


def test_from_model_requires_an_index(mongo, tiny_product_model):
    name = f"t_{uuid.uuid4().hex[:10]}"
    with pytest.raises(RecsysError, match="recsys-nb index --model"):
        MongoStore.from_model(tiny_product_model, uri=mongo.uri, database=name)


# --- schema -------------------------------------------------------------------------------


def test_schema_validator_and_unique_vectors(store):
    emb = synthetic(50, dim=8)
    store.index_embeddings(emb, latent_dim=8)
    options = store.db.command("listCollections", filter={"name": EMBEDDINGS})
    validator = options["cursor"]["firstBatch"][0]["options"]["validator"]
    assert "$jsonSchema" in json.dumps(validator)
    raw = store.embeddings
    # MongoDB itself refuses a vector whose length is not `dim`, or a wrong type
    from recsys_nb.store import encode_vector

    base = {"_id": "x:1", "model_id": "x", "item_id": 1, "dim": 8}
    # one vector per model and item: _id must be "<model_id>:<item_id>"
    for wrong in ({"_id": "x:2"}, {"_id": "y:1"}, {"_id": None}):
        with pytest.raises(pymongo.errors.WriteError, match="failed validation"):
            raw.insert_one({**base, **wrong, "vector": encode_vector(np.ones(8))})
    with pytest.raises(pymongo.errors.WriteError, match="failed validation"):
        raw.insert_one({**base, "vector": encode_vector(np.ones(7, np.float32))})
    with pytest.raises(pymongo.errors.WriteError, match="failed validation"):
        raw.insert_one({**base, "vector": [1.0] * 9})
    with pytest.raises(pymongo.errors.WriteError, match="failed validation"):
        raw.insert_one({**base, "model_id": 5, "vector": encode_vector(np.ones(8))})
    raw.insert_one({**base, "vector": encode_vector(np.ones(8))})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        raw.insert_one({**base, "vector": encode_vector(np.ones(8))})


def test_a_models_vectors_are_its_own_id_range(store):
    """Model "m" does not read, count or delete the vectors of model "m:x"."""
    short, longer = synthetic(20, dim=8, model_id="m"), synthetic(30, dim=8, model_id="m:x", seed=1)
    store.index_embeddings(short, latent_dim=8)
    store.index_embeddings(longer, latent_dim=8)
    assert len(store.use("m")) == 20
    assert len(store.use("m:x")) == 30
    table = store.use("m").recommend(vector=short.vectors[0], k=40)
    assert len(table) == 20
    assert store.drop_model("m") == 20
    assert len(store.use("m:x")) == 30


# --- writes ------------------------------------------------------------------------------


def test_index_twice_is_idempotent(store):
    emb = synthetic(3000, dim=16)
    first = store.index_embeddings(emb, latent_dim=16, batch_size=700)
    assert first["written"] == 3000
    second = store.index_embeddings(emb, latent_dim=16, batch_size=700)
    assert second["written"] == 0 and second["skipped"] == 3000
    third = store.index_embeddings(emb, latent_dim=16, resume=False)  # rewrite everything
    assert third["written"] == 3000
    assert_exactly(store.embeddings, emb, 16)
    assert store.items.count_documents({}) == 3000
    assert store.models.count_documents({}) == 1


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda v: v.__setitem__((17, 3), np.nan), "item 10017: vector has NaN or infinite"),
        (lambda v: v.__setitem__((42, 0), np.inf), "item 10042: vector has NaN or infinite"),
        (lambda v: v.__setitem__((5, 1), 1e39), "item 10005: vector has NaN or infinite"),
        (lambda v: v.__setitem__(8, 0.0), "item 10008: vector is all zeros"),
    ],
)
def test_bad_vectors_are_refused_before_anything_is_written(store, spoil, message):
    emb = synthetic(100, dim=8)
    vectors = emb.vectors.astype(np.float64)
    spoil(vectors)
    emb.vectors = vectors
    with pytest.raises(RecsysError, match=message) as exc:
        store.index_embeddings(emb, latent_dim=8)
    assert "nothing was written" in str(exc.value)
    assert store.db.list_collection_names() == []


def test_wrong_length_vectors_are_refused(store):
    emb = synthetic(20, dim=8)
    with pytest.raises(RecsysError, match="item 10000: vector has 8 values .* latent size is 16"):
        store.index_embeddings(emb, latent_dim=16)
    ragged = [np.ones(8)] * 20
    ragged[11] = np.ones(7)
    emb.vectors = ragged
    with pytest.raises(RecsysError, match="item 10011: vector has 7 values"):
        store.index_embeddings(emb, latent_dim=8)
    assert store.db.list_collection_names() == []
    with pytest.raises(RecsysError, match="item 3 is given twice"):
        check_vectors([1, 2, 3, 3], np.ones((4, 2)), 2)


def test_a_retrained_model_gets_its_own_vectors(store):
    old, new = synthetic(500, 8, "products-A", seed=1), synthetic(500, 8, "products-B", seed=2)
    store.index_embeddings(old, latent_dim=8, name="products")
    store.index_embeddings(new, latent_dim=8, name="products")
    assert_exactly(store.embeddings, old, 8)
    assert_exactly(store.embeddings, new, 8)
    a = store.use("products-A").recommend(10_000, k=5)["id"].tolist()
    assert a == MemoryStore(old).recommend(10_000, k=5)["id"].tolist()
    b = store.use("products-B").recommend(10_000, k=5)["id"].tolist()
    assert b == MemoryStore(new).recommend(10_000, k=5)["id"].tolist()
    # the same model id with another latent size or catalogue is refused
    with pytest.raises(RecsysError, match="latent size 8, not 16"):
        store.index_embeddings(synthetic(10, 16, "products-A"), latent_dim=16)
    with pytest.raises(RecsysError, match="replace=True"):
        store.index_embeddings(synthetic(10, 8, "products-A", seed=9), latent_dim=8)


def test_the_cache_follows_writes(store):
    emb = synthetic(400, 8, "m")
    store.index_embeddings(emb, latent_dim=8)
    store.use("m")
    before = store.recommend(10_000, k=5)
    assert store.recommend(10_000, k=5).equals(before)  # cached
    changed = synthetic(400, 8, "m", seed=5)
    changed.source = emb.source
    # another writer (another store object) replaces the vectors
    with MongoStore(store._uri, store.database_name) as other:
        other.index_embeddings(changed, latent_dim=8, resume=False)
    after = store.recommend(10_000, k=5)
    assert after["id"].tolist() == MemoryStore(changed).recommend(10_000, k=5)["id"].tolist()


INDEXER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from recsys_nb.embed import Embeddings
    from recsys_nb.store import MongoStore
    uri, db, npz, pause, ready = sys.argv[1:6]
    with np.load(npz) as f:
        emb = Embeddings(str(f["model_id"]), f["ids"], f["vectors"], __import__("pandas")
                         .DataFrame(index=f["ids"]), "synthetic")
    store = MongoStore(uri, db)
    open(ready, "w").close()
    store.index_embeddings(emb, latent_dim=emb.vectors.shape[1], batch_size=500,
                           on_batch=lambda done, total: time.sleep(float(pause)))
    print("done")
    """
)


def _start_indexer(tmp_path, store, npz, pause: float, tag: str) -> subprocess.Popen:
    ready = tmp_path / f"ready-{tag}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            INDEXER,
            store._uri,
            store.database_name,
            str(npz),
            str(pause),
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc


def _save(tmp_path, emb: Embeddings):
    npz = tmp_path / "emb.npz"
    np.savez(npz, ids=emb.ids, vectors=emb.vectors, model_id=emb.model_id)
    return npz


def test_killing_the_indexer_half_way_then_resuming(store, tmp_path):
    emb = synthetic(20_000, 32, "killed")
    emb.meta = pd.DataFrame(index=emb.ids)
    emb.source = "synthetic"
    npz = _save(tmp_path, emb)
    proc = _start_indexer(tmp_path, store, npz, pause=0.05, tag="a")
    kill_when(proc, lambda: store.embeddings.count_documents({"model_id": "killed"}) >= 4000, 120)
    half = store.embeddings.count_documents({"model_id": "killed"})
    assert 4000 <= half < 20_000
    result = store.index_embeddings(emb, latent_dim=32)
    assert result["skipped"] == half and result["written"] == 20_000 - half
    assert_exactly(store.embeddings, emb, 32)
    assert store.model_doc("killed")["complete"] is True


def test_two_indexers_at_once_leave_one_document_per_item(store, tmp_path):
    emb = synthetic(10_000, 16, "twice")
    emb.meta = pd.DataFrame(index=emb.ids)
    emb.source = "synthetic"
    npz = _save(tmp_path, emb)
    procs = [_start_indexer(tmp_path, store, npz, pause=0.0, tag=t) for t in "ab"]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "done" in out
    assert_exactly(store.embeddings, emb, 16)


def test_kill_9_mongod_while_writing_50000_vectors(tmp_path, tiny_product_model):
    """The issue's fault test: kill -9 mongod mid-write, restart, re-run: exactly 50,000."""
    emb = synthetic(50_000, 32, "fault")
    server = LocalMongo(tmp_path / "mongo")
    errors: list[Exception] = []
    try:
        server.start()
        writer = MongoStore(server.uri, "fault", timeout_ms=2000)

        def run():
            try:
                writer.index_embeddings(
                    emb, latent_dim=32, batch_size=1000, on_batch=lambda *_: time.sleep(0.01)
                )
            except Exception as exc:  # noqa: BLE001 - the kill makes it fail
                errors.append(exc)

        thread = threading.Thread(target=run)
        with server.client() as watcher:
            thread.start()
            deadline = time.monotonic() + 120
            while watcher.fault.embeddings.count_documents({}) < 15_000:
                assert thread.is_alive() and time.monotonic() < deadline
                time.sleep(0.02)
        killed = server.kill()
        thread.join(60)
        assert not thread.is_alive() and not pid_alive(killed)
        assert errors and isinstance(errors[0], RecsysError)
        assert "not reachable" in str(errors[0]) or "connection" in str(errors[0]).lower()
        writer.close()

        server.start()  # recovers: stale lock, unclean shutdown
        with MongoStore(server.uri, "fault") as store:
            partial = store.embeddings.count_documents({})
            assert 0 < partial < 50_000
            result = store.index_embeddings(emb, latent_dim=32)
            assert result["stored"] == 50_000
            assert_exactly(store.embeddings, emb, 32)
            assert len(store.embeddings.distinct("_id")) == 50_000
    finally:
        server.stop()


# --- connection errors and secrets -----------------------------------------------------------


def test_an_unreachable_server_fails_fast():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(RecsysError, match="not reachable"):
        MongoStore(f"mongodb://127.0.0.1:{port}/", timeout_ms=1000)
    assert time.monotonic() - started < 5


def test_a_password_never_shows(mongo, caplog):
    secret = "Pa55-w0rd-" + uuid.uuid4().hex[:8]
    name = f"t_{uuid.uuid4().hex[:10]}"
    with mongo.client() as admin:
        admin[name].command("createUser", "alice", pwd=secret, roles=["readWrite"])
    uri = (
        f"mongodb://alice:{secret}@127.0.0.1:{mongo.port}/?directConnection=true&authSource={name}"
    )
    with caplog.at_level(logging.DEBUG):
        store = MongoStore(uri, name)  # authenticates for real
        try:
            assert secret not in repr(store) and "alice:***@" in repr(store)
            assert secret not in store.location
            with pytest.raises(RecsysError) as exc:
                store.use("no-such-model")
            assert secret not in str(exc.value)
            store.index_embeddings(synthetic(20, 4), latent_dim=4)
        finally:
            store._client.drop_database(name)
            store.close()
        # a wrong password: the error names the server, never the password
        bad = uri.replace(secret, secret + "x")
        with pytest.raises(RecsysError) as exc:
            MongoStore(bad, name, timeout_ms=2000)
        assert secret not in str(exc.value) and "***" in str(exc.value)
        # unreachable with a password
        port = free_port()
        with pytest.raises(RecsysError) as exc:
            MongoStore(f"mongodb://alice:{secret}@127.0.0.1:{port}/", name, timeout_ms=500)
        assert secret not in str(exc.value)
    assert secret not in caplog.text


# --- vector search ------------------------------------------------------------------------------


def test_vector_search_pipeline_is_built_as_atlas_expects():
    q = np.linspace(-1, 1, 8).astype(np.float32)
    pipeline = vector_search_pipeline(
        q,
        model_id="m1",
        k=10,
        index="vector_8d",
        filters={"gender": "Women", "masterCategory": ["Footwear", "Apparel"]},
        exclude_item=np.int64(21379),
    )
    stage = pipeline[0]["$vectorSearch"]
    assert list(pipeline[0]) == ["$vectorSearch"] and len(pipeline[0]) == 1
    assert stage["index"] == "vector_8d" and stage["path"] == "vector"
    assert stage["queryVector"] == pytest.approx(q.tolist())
    assert all(type(x) is float for x in stage["queryVector"])
    assert stage["limit"] == 11  # one more: the query item comes back and is dropped
    assert stage["numCandidates"] == 220
    assert stage["filter"] == {
        "model_id": "m1",
        "gender": {"$in": ["Women"]},
        "masterCategory": {"$in": ["Footwear", "Apparel"]},
    }
    assert pipeline[1] == {"$match": {"item_id": {"$ne": 21379}}}
    assert type(pipeline[1]["$match"]["item_id"]["$ne"]) is int
    assert pipeline[2] == {"$limit": 10}
    project = pipeline[3]["$project"]
    assert project["_id"] == 0 and project["item_id"] == 1
    assert project["score"] == {
        "$subtract": [{"$multiply": [2, {"$meta": "vectorSearchScore"}]}, 1]
    }
    # a vector query: no exclusion; numCandidates is capped at Atlas' 10,000
    big = vector_search_pipeline(q, model_id="m1", k=2000, index="vector_8d")
    assert big[0]["$vectorSearch"]["numCandidates"] == MAX_CANDIDATES
    assert big[0]["$vectorSearch"]["filter"] == {"model_id": "m1"}
    assert [list(s)[0] for s in big] == ["$vectorSearch", "$limit", "$project"]
    with pytest.raises(RecsysError):
        vector_search_pipeline(q, model_id="m1", k=MAX_CANDIDATES + 1, index="x")


def test_vector_index_definition():
    d = vector_index_definition(32, quantization="scalar", hnsw={"maxEdges": 32})
    vector = d["fields"][0]
    assert vector == {
        "type": "vector",
        "path": "vector",
        "numDimensions": 32,
        "similarity": "cosine",
        "quantization": "scalar",
        "indexingMethod": "hnsw",
        "hnswOptions": {"maxEdges": 32},
    }
    filters = [f["path"] for f in d["fields"][1:]]
    assert filters[0] == "model_id" and "gender" in filters and "masterCategory" in filters
    assert all(f["type"] == "filter" for f in d["fields"][1:])
    assert "quantization" not in vector_index_definition(8)["fields"][0]
    with pytest.raises(RecsysError, match="quantization"):
        vector_index_definition(8, quantization="float16")


def test_the_local_mongod_has_no_vector_search_so_search_is_exact(store):
    emb = synthetic(200, 8, "local")
    store.index_embeddings(emb, latent_dim=8)
    store.use("local")
    assert store.has_vector_index() is False
    with pytest.raises(RecsysError, match="no Atlas Vector Search .* exact search"):
        store.create_vector_index()
    with pytest.raises(RecsysError, match="no queryable vector search index"):
        MongoStore(store._uri, store.database_name, model="local", search="vector").recommend(
            10_000
        )
    assert len(store.recommend(10_000, k=3)) == 3


@pytest.mark.atlas
@pytest.mark.skipif(
    not ATLAS_URI,
    reason="needs an Atlas cluster: set RECSYS_NB_ATLAS_URI (or MONGODB_URI) to run $vectorSearch",
)
def test_atlas_vector_search(tiny_product_model, small_catalog):
    name = f"recsys_nb_test_{uuid.uuid4().hex[:8]}"
    store = MongoStore(ATLAS_URI, name, timeout_ms=20_000)
    try:
        store.index(tiny_product_model, small_catalog)
        store.use(tiny_product_model)
        store.create_vector_index(timeout=900)
        assert store.has_vector_index(refresh=True)
        memory = MemoryStore(embed_catalog(tiny_product_model, small_catalog))
        hits = 0
        for item in memory.ids[:10]:
            a = store.recommend(item, k=10, filters={"gender": "Men"})
            b = memory.recommend(item, k=10, filters={"gender": "Men"})
            assert list(a.columns) == list(b.columns)
            assert set(a["gender"]) <= {"Men"}
            hits += len(set(a["id"]) & set(b["id"]))
        assert hits >= 90  # approximate search over a tiny catalogue is near exact
    finally:
        store._client.drop_database(name)
        store.close()


# --- the command line ---------------------------------------------------------------------------


def test_cli_db_index_recommend(tmp_path, monkeypatch, capsys, tiny_product_model, small_catalog):
    monkeypatch.setenv("RECSYS_NB_MONGO_DIR", str(tmp_path / "mongo"))
    monkeypatch.setenv("RECSYS_NB_MONGO_DB", "cli")
    model = str(tiny_product_model.path)
    try:
        assert cli.main(["db", "start"]) == 0
        assert "mongod running" in capsys.readouterr().out
        assert cli.main(["db", "start"]) == 0  # reuses it
        assert cli.main(["db", "status"]) == 0
        status = capsys.readouterr().out
        assert "127.0.0.1" in status and "answering" in status
        assert cli.main(["index", "--model", model, "--catalog", str(small_catalog)]) == 0
        assert "indexed" in capsys.readouterr().out
        memory_item = int(MemoryStore.from_model(model, small_catalog).ids[0])
        out = {}
        for kind in ("memory", "mongo"):
            argv = [
                "recommend",
                "--model",
                model,
                "--catalog",
                str(small_catalog),
                "--id",
                str(memory_item),
                "-k",
                "10",
                "--store",
                kind,
                "--json",
            ]
            assert cli.main(argv) == 0
            out[kind] = [row["id"] for row in json.loads(capsys.readouterr().out)]
        assert out["mongo"] == out["memory"] and len(out["mongo"]) == 10
        assert cli.main(["db", "create-index", "--model", model]) == 2
        assert "exact search" in capsys.readouterr().err
    finally:
        assert cli.main(["db", "stop"]) == 0
    assert cli.main(["db", "status"]) == 1
    assert LocalMongo(tmp_path / "mongo").pid is None


def test_a_widget_on_vectors_alone_names_its_row_without_loading_a_model(store):
    """Vectors indexed without the model's files (as benchmarks do): the widget still
    opens, and reading the model's name does not try to load it from GridFS."""
    from recsys_nb.widget import RecommenderWidget

    store.index_embeddings(synthetic(40, dim=8), latent_dim=8, name="vectors-only")
    bound = MongoStore(store.location, store.database_name, model="synthetic-1")
    assert bound.model_name == "vectors-only"
    w = RecommenderWidget(store=bound, k=3)
    assert w.row_names == ["vectors-only"] and bound._model is None
    w.selected = 10_005
    assert len(w.recommendations) == 3
    with pytest.raises(RecsysError, match="has no stored model files"):
        bound.model  # noqa: B018 - the encoder is what is missing
