"""The whole catalogue in MongoDB: items, thumbnails and models, used from a second machine.

A real local mongod (started by the package in a temporary folder), a real 300-item
catalogue and a tiny trained model; the "second machine" is a subprocess with empty
``RECSYS_NB_HOME`` and ``RECSYS_NB_DATA`` folders: no model folder, no image file.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pymongo
import pytest
from bson.binary import Binary
from PIL import Image

from conftest import kill_when
from recsys_nb import cli
from recsys_nb.embed import embed, embed_catalog, prepare_image
from recsys_nb.errors import RecsysError
from recsys_nb.mongod import LocalMongo
from recsys_nb.protocol import THUMB_MAX_BYTES, IdIndex, filter_mask, parse_filters
from recsys_nb.recommend import MemoryStore
from recsys_nb.store import (
    ITEMS,
    THUMBNAILS,
    MongoStore,
    catalog_key,
    vector_index_definition,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = (
    ROOT
    / "widgets-react"
    / "node_modules"
    / "@mongodb-js"
    / "search-index-schema"
    / "output"
    / "vectorSearch"
    / "index.json"
)


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    server = LocalMongo(tmp_path_factory.mktemp("mongo"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    monkeypatch.delenv("MONGODB_URI", raising=False)


def fresh(mongo) -> MongoStore:
    return MongoStore(mongo.uri, f"t_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def memory(tiny_product_model, small_catalog):
    return MemoryStore.from_model(tiny_product_model, small_catalog)


@pytest.fixture(scope="module")
def indexed(mongo, tiny_product_model, small_catalog):
    """One database holding the tiny model and its catalogue (items, thumbnails, model)."""
    store = fresh(mongo)
    result = store.index(tiny_product_model, small_catalog)
    yield store, result
    store._client.drop_database(store.database_name)
    store.close()


def jpeg_size(data: bytes) -> tuple[int, int]:
    assert data[:3] == b"\xff\xd8\xff"
    return Image.open(io.BytesIO(data)).size


# --- the catalogue and the model in the database --------------------------------------------


def test_index_writes_items_thumbnails_and_the_model(indexed, memory, small_catalog):
    store, result = indexed
    n = len(memory)
    assert result["items_written"] == result["thumbnails_written"] == result["written"] == n
    assert store.items.count_documents({}) == store.thumbnails_collection.count_documents({}) == n
    # every catalogue column, in catalogue order; the local image_path is not stored
    expected = memory.meta.drop(columns="image_path")
    pd.testing.assert_frame_equal(store.meta, expected)
    np.testing.assert_array_equal(store.ids, memory.ids)
    # thumbnails: what the widget sends from the image files, byte for byte
    ids = memory.ids[:30].tolist()
    assert store.thumbnails(ids) == memory.thumbnails(ids)
    sizes = [len(d["data"]) for d in store.thumbnails_collection.find({}, {"data": 1})]
    assert max(sizes) <= THUMB_MAX_BYTES and np.mean(sizes) < 8_000  # a few KB each
    assert jpeg_size(store.thumbnail(ids[0])[0]) == (60, 80)
    # the model's files are in GridFS
    doc = store.model_doc()
    assert set(doc["files"]) == {"model_keras", "meta_json"}
    assert store.db["model_files.files"].count_documents({}) == 2
    assert doc["catalog"] == result["catalog"] == store.catalog


def test_the_catalogue_is_known_by_its_content_not_its_path(
    indexed, tiny_product_model, small_catalog, tmp_path
):
    store, first = indexed
    other_spelling = small_catalog / ".." / small_catalog.name
    again = store.index(tiny_product_model, other_spelling)
    assert again["catalog"] == first["catalog"]
    assert again["written"] == again["items_written"] == again["thumbnails_written"] == 0
    # a second model on the same catalogue shares its items and thumbnails
    copy = tmp_path / "second-model"
    shutil.copytree(tiny_product_model.path, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["model_id"] = "second-" + meta["model_id"]
    (copy / "meta.json").write_text(json.dumps(meta))
    (copy / "embeddings.npz").unlink(missing_ok=True)
    second = store.index(copy, small_catalog)
    assert second["catalog"] == first["catalog"] and second["written"] == len(store.ids)
    assert second["items_written"] == second["thumbnails_written"] == 0
    assert store.items.count_documents({}) == len(store.ids)
    # another catalogue (other ids) is another key
    ids = [1, 2, 3]
    assert catalog_key(ids, None, "x") != catalog_key([1, 2], None, "x")


def test_changed_model_files_need_replace(indexed, tiny_product_model, tmp_path):
    store, _ = indexed
    copy = tmp_path / "refit"
    shutil.copytree(tiny_product_model.path, copy)
    meta = json.loads((copy / "meta.json").read_text())
    meta["latent_transform"] = None  # as if refitted, same model id
    (copy / "meta.json").write_text(json.dumps(meta))
    emb = embed_catalog(tiny_product_model)
    with pytest.raises(RecsysError, match="other files .*meta_json.*replace=True"):
        store.index(copy, embeddings=emb, thumbnails=False)


def test_a_model_by_name_comes_from_gridfs_and_embeds_identically(
    indexed, tiny_product_model, small_catalog, monkeypatch, tmp_path
):
    store, _ = indexed
    monkeypatch.setenv("RECSYS_NB_HOME", str(tmp_path / "home"))
    remote = MongoStore(store._uri, store.database_name, model="tiny-products")
    assert remote.model_id == tiny_product_model.meta["model_id"]
    stored = remote.model
    assert stored.path.is_relative_to(tmp_path / "home")
    assert stored.meta == tiny_product_model.meta  # the latent transform too
    image = small_catalog / "images" / f"{remote.ids[4]}.jpg"
    a = embed(stored, prepare_image(stored, image)[None])
    b = embed(tiny_product_model, prepare_image(tiny_product_model, image)[None])
    np.testing.assert_array_equal(a, b)
    # the cached copy is used again (and checked by its hash)
    again = MongoStore(store._uri, store.database_name, model=remote.model_id).model
    assert again.path == stored.path
    # an unknown name lists what is there
    with pytest.raises(RecsysError, match="no model 'nope' .*tiny-products"):
        remote.use("nope")


def test_db_models_lists_settings_and_figures(indexed, capsys, monkeypatch):
    store, _ = indexed
    report = {
        "k": 10,
        "n_items": 30,
        "split": "val",
        "results": {"model": {"precision": {"articleType": 0.5}, "mrr": 0.6}},
    }
    store.use("tiny-products").set_evaluation(report)
    monkeypatch.setenv("MONGODB_URI", store._uri)
    monkeypatch.setenv("RECSYS_NB_MONGO_DB", store.database_name)
    assert cli.main(["db", "models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-products" in out and "latent 16" in out and "complete" in out
    assert "epochs=2" in out and "P@10 articleType" in out and "0.500" in out
    assert cli.main(["db", "models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    mine = next(m for m in listed if m["model_id"] == store.model_id)
    assert mine["files"] == ["model.keras", "meta.json"]
    assert mine["evaluation"]["results"]["model"]["mrr"] == 0.6


# --- a second machine: the URI and nothing else ------------------------------------------------

SECOND_MACHINE = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from pathlib import Path
    import recsys_nb
    from recsys_nb import cli, explore, settings
    from recsys_nb.store import MongoStore
    from recsys_nb.widget import RecommenderWidget

    uri, db, query, image, out = sys.argv[1:6]
    query = int(query)
    assert not any(settings.models_dir().glob("*")), "a model folder is reachable"
    assert not settings.data_root().joinpath("fashion-products").exists()

    class Comm:  # records what the widget sends to the front end
        kernel, comm_id = "recording", "c"
        def __init__(self): self.sent = []
        def send(self, data=None, buffers=None, **_):
            self.sent.append((data, [bytes(b) for b in (buffers or [])]))
        def on_msg(self, *_): pass
        def close(self, *_, **__): pass

    def ask(w, content, buffers=()):
        n = len(w.comm.sent)
        w._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                       "buffers": list(buffers)})
        (reply, bufs), = [(d["content"], b) for d, b in w.comm.sent[n:] if d["method"] == "custom"
                          and d["content"].get("uuid") == content["uuid"]]
        for item in reply.get("items", []) + ([reply["query"]] if reply.get("query") else []):
            item["thumb_bytes"] = None if item["thumb"] is None else bufs[item["thumb"]].hex()
        return reply

    store = MongoStore(uri, db, model="tiny-products")
    w = RecommenderWidget(store=store)
    w.comm = Comm()
    res = {"facets": w.facets, "n": len(w.meta)}
    res["page"] = ask(w, {"kind": "page", "uuid": "p", "search": "", "filters": {},
                          "offset": 0, "limit": 24})
    res["page_men"] = ask(w, {"kind": "page", "uuid": "q", "search": "shirt",
                              "filters": {"gender": ["Men"]}, "offset": 0, "limit": 200})
    res["click"] = ask(w, {"kind": "recommend", "uuid": "r", "item_id": query})
    res["selected"] = w.selected
    w.filters = {"gender": ["Women"]}
    res["filtered"] = w.recommendations
    w.filters = {}
    res["drop"] = ask(w, {"kind": "recommend", "uuid": "d",
                          "image": {"name": "x.jpg", "type": "image/jpeg"}},
                      [Path(image).read_bytes()])

    outdir = Path(out)
    res["recs_html"] = str(recsys_nb.export_recommendations_html(
        store, [query], outdir / "recs.html", k=3))
    ex = explore.LatentExplorer.from_store(store, "masterCategory", method="pca")
    ex.select(list(store.ids[:3]))
    res["explorer_grid"] = len(ex.grid.value)
    ex.show_product(int(store.ids[1]))
    res["explorer_preview"] = ex.preview.value[:2].hex()
    res["map_html"] = str(explore.export_umap_html(ex.frame, outdir / "map.html", store=store))

    for argv in (["recommend", "--store", "mongo", "--model", "tiny-products", "--id",
                  str(query), "-k", "10", "--json"],
                 ["recommend", "--store", "mongo", "--model", "tiny-products", "--image",
                  image, "-k", "5", "--json"]):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert cli.main(argv) == 0
        res[argv[-5]] = json.loads(buf.getvalue())
    Path(outdir / "result.json").write_text(json.dumps(res, default=str))
    """
)


def test_a_second_machine_with_only_the_uri(indexed, memory, small_catalog, tmp_path):
    store, _ = indexed
    home, data, out = tmp_path / "home", tmp_path / "data", tmp_path / "out"
    for folder in (home, data, out):
        folder.mkdir()
    query = int(memory.ids[2])
    dropped = tmp_path / "photo.jpg"  # a photo the second machine has
    shutil.copy(small_catalog / "images" / f"{memory.ids[7]}.jpg", dropped)
    env = {
        **os.environ,
        "RECSYS_NB_HOME": str(home),
        "RECSYS_NB_DATA": str(data),
        "MONGODB_URI": store._uri,
        "RECSYS_NB_MONGO_DB": store.database_name,
    }
    proc = subprocess.run(
        [sys.executable, "-c", SECOND_MACHINE, store._uri, store.database_name, str(query),
         str(dropped), str(out)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "result.json").read_text())

    # the grid: catalogue order, names, labels, thumbnails as the files give them
    assert res["n"] == len(memory)
    page = res["page"]
    assert page["ok"] and page["total"] == len(memory)
    assert [i["id"] for i in page["items"]] == memory.ids[:24].tolist()
    thumbs = memory.thumbnails(memory.ids[:24])
    assert [bytes.fromhex(i["thumb_bytes"]) for i in page["items"]] == [
        thumbs[i][0] for i in memory.ids[:24].tolist()
    ]
    first = memory.meta.loc[memory.ids[0]]
    assert page["items"][0]["name"] == first["productDisplayName"]
    assert page["items"][0]["labels"]["articleType"] == first["articleType"]
    meta = memory.meta
    men = meta[
        meta["productDisplayName"].str.lower().str.contains("shirt") & (meta.gender == "Men")
    ]
    assert [i["id"] for i in res["page_men"]["items"]] == men.index.tolist()
    assert "Women" in res["facets"]["gender"]

    # a click: the memory store's ids and scores
    expected = memory.recommend(query, k=10)
    click = res["click"]
    assert click["ok"] and res["selected"] == query and click["query"]["thumb_bytes"]
    assert [i["id"] for i in click["items"]] == expected["id"].tolist()
    np.testing.assert_allclose([i["score"] for i in click["items"]], expected["score"], rtol=1e-6)
    women = memory.recommend(query, k=10, filters={"gender": "Women"})
    assert [r["id"] for r in res["filtered"]] == women["id"].tolist()
    # an image dropped on the widget, encoded by the model from GridFS
    by_image = memory.recommend(image=dropped, k=10)
    assert [i["id"] for i in res["drop"]["items"]] == by_image["id"].tolist()
    assert res["drop"]["items"][0]["id"] == int(memory.ids[7])

    # the command line, by model name
    cli_rows = res["--id"]
    assert [r["id"] for r in cli_rows] == expected["id"].tolist()
    np.testing.assert_allclose([r["score"] for r in cli_rows], expected["score"], rtol=1e-6)
    assert cli_rows[0]["name"] == memory.meta.loc[cli_rows[0]["id"], "productDisplayName"]
    assert [r["id"] for r in res["--image"]] == by_image["id"].tolist()[:5]

    # the explorer and both exports, pictures from the database
    assert res["explorer_grid"] > 1000 and res["explorer_preview"] == "ffd8"
    recs = Path(res["recs_html"]).read_text()
    assert recs.count("jpeg;base64,") == 4 and "score" in recs
    assert Path(res["map_html"]).read_text().count("jpeg;base64,") >= len(memory)
    assert not any((home / "models").glob("*"))  # nothing but the cache was written there


# --- crash safety and validation ----------------------------------------------------------------

INDEXER = textwrap.dedent(
    """
    import sys, time
    from recsys_nb.store import MongoStore
    uri, db, model, catalog = sys.argv[1:5]
    store = MongoStore(uri, db)
    store.index(model, catalog, batch_size=25, on_items=lambda done, total: time.sleep(0.3))
    print("done")
    """
)


def test_kill_9_mid_index_with_thumbnails_then_rerun(
    mongo, tiny_product_model, small_catalog, memory
):
    embed_catalog(tiny_product_model, small_catalog)  # cached: the indexer starts fast
    store = fresh(mongo)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", INDEXER, mongo.uri, store.database_name,
             str(tiny_product_model.path), str(small_catalog)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        kill_when(proc, lambda: store.items.count_documents({}) >= 75, 180)
        n = len(memory)
        items = store.items.count_documents({})
        assert 75 <= items < n and store.embeddings.count_documents({}) == 0
        # all or nothing per item: no item without its thumbnail
        with_thumbs = set(store.thumbnails_collection.distinct("item_id"))
        assert set(store.items.distinct("item_id")) <= with_thumbs
        result = store.index(tiny_product_model, small_catalog)
        assert result["items_written"] == n - items
        for name in (ITEMS, THUMBNAILS):
            ids = [d["item_id"] for d in store.db[name].find({}, {"item_id": 1})]
            assert sorted(ids) == sorted(memory.ids.tolist())  # each exactly once
        assert store.embeddings.count_documents({}) == n
        assert store.use(tiny_product_model).model_doc()["complete"] is True
        assert store.recommend(memory.ids[0], k=5)["id"].tolist() == (
            memory.recommend(memory.ids[0], k=5)["id"].tolist()
        )
    finally:
        store._client.drop_database(store.database_name)
        store.close()


def test_an_unreadable_image_is_refused_before_anything_is_written(
    mongo, memory, small_catalog, tmp_path
):
    store = fresh(mongo)
    images = [str(small_catalog / "images" / f"{i}.jpg") for i in memory.ids]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((small_catalog / "images" / f"{memory.ids[0]}.jpg").read_bytes()[:300])
    images[120] = str(broken)
    with pytest.raises(RecsysError, match=rf"broken.jpg \(item {memory.ids[120]}\).*nothing"):
        store.index_embeddings(memory.embeddings, latent_dim=16, images=images)
    images[120] = str(tmp_path / "missing.jpg")
    with pytest.raises(RecsysError, match=rf"item {memory.ids[120]}: cannot read image"):
        store.index_embeddings(memory.embeddings, latent_dim=16, images=images)
    assert store.db.list_collection_names() == []
    store.close()


def test_malformed_thumbnails_and_items_are_refused_by_the_validator(indexed):
    store, _ = indexed
    good_thumb = store.thumbnails_collection.find_one({})
    good_item = store.items.find_one({})
    write_error = pymongo.errors.WriteError

    def thumb(**change):
        fresh_id = int(uuid.uuid4().int % 10**9)
        return {**good_thumb, "_id": f"x:{uuid.uuid4().hex}", "item_id": fresh_id, **change}

    def item(**change):
        doc = {**good_item, "_id": f"x:{uuid.uuid4().hex}", **change}
        return {k: v for k, v in doc.items() if v is not ...}

    for bad in (
        thumb(data="not bytes"),
        thumb(data=Binary(b"\xff\xd8\xff" + b"0" * THUMB_MAX_BYTES)),  # a photo, not a thumbnail
        thumb(data=Binary(b"\xff\xd8")),
        thumb(mime="text/html"),
        thumb(width=4000),
        thumb(extra="field"),
        {k: v for k, v in thumb().items() if k != "data"},
    ):
        with pytest.raises(write_error, match="failed validation"):
            store.thumbnails_collection.insert_one(bad)
    for bad in (
        item(pos=...),
        item(pos=-1),
        item(catalog=5),
        item(item_id=1.5),
        item(articleType={"nested": "document"}),
        item(baseColour=["a", "list"]),
        item(productDisplayName=12),
    ):
        with pytest.raises(write_error, match="failed validation"):
            store.items.insert_one(bad)
    store.thumbnails_collection.insert_one(thumb())  # the good ones pass
    store.items.insert_one(item(item_id=987654321))
    store.db[ITEMS].delete_many({"_id": {"$regex": "^x:"}})
    store.db[THUMBNAILS].delete_many({"_id": {"$regex": "^x:"}})


# --- one read interface -------------------------------------------------------------------------


def test_the_shared_helpers():
    index = IdIndex(np.array([21379, 18653]))
    assert index.position("21379") == 0 and index.position(np.int64(18653)) == 1
    assert "18653" in index and 5 not in index
    with pytest.raises(RecsysError, match="unknown id 5: not in this catalogue"):
        index.position(5)
    text = IdIndex(np.array(["a", "b"]))
    assert text.position("b") == 1
    assert parse_filters({"g": "W", "y": [2011, 2012]}) == {"g": ["W"], "y": [2011, 2012]}
    assert parse_filters({"g": []}, keep_empty=False) == {}
    with pytest.raises(RecsysError, match="cannot filter on 'colour'"):
        parse_filters({"colour": "red"}, ["gender"])
    table = pd.DataFrame({"gender": ["Men", "Women"], "year": [2011, 2012]})
    assert filter_mask(table, {"year": "2012"}).tolist() == [False, True]  # from --filter
    assert filter_mask(table, None) is None


def test_memory_and_mongo_stores_offer_one_interface(indexed, memory):
    from recsys_nb.protocol import Store, StoreBase

    store, _ = indexed
    store.use("tiny-products")
    for s in (memory, store):
        assert isinstance(s, StoreBase) and isinstance(s, Store)
        assert s.position(str(memory.ids[3])) == 3
        np.testing.assert_array_equal(s.vector(memory.ids[3]), memory.vectors[3])
        assert s.thumbnail(memory.ids[3])[1] == "image/jpeg"
    a = store.recommend(memory.ids[5], k=6, filters={"year": [str(memory.meta.year.iloc[0])]})
    b = memory.recommend(memory.ids[5], k=6, filters={"year": int(memory.meta.year.iloc[0])})
    pd.testing.assert_frame_equal(a, b)
    # what the widget sends ahead: each query's own recommendations, in one batched search
    queries = memory.ids[[2, 9]].tolist()
    near = memory.neighbours(queries, k=4)
    np.testing.assert_array_equal(store.neighbours(queries, k=4), near)
    expected = {i for q in queries for i in memory.recommend(q, k=4)["id"]} - set(queries)
    assert set(near.tolist()) == expected and len(near) == len(expected)


# --- Atlas ----------------------------------------------------------------------------------------


def test_the_vector_index_definition_matches_mongodbs_published_schema():
    """What `db create-index` sends, against @mongodb-js/search-index-schema (npm)."""
    jsonschema = pytest.importorskip("jsonschema")
    assert SCHEMA.is_file(), "cd widgets-react && npm ci (devDependency search-index-schema)"
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    for dim in (16, 32):
        for quantization in (None, "none", "scalar", "binary"):
            definition = vector_index_definition(dim, quantization=quantization)
            errors = list(validator.iter_errors(definition))
            assert not errors, (dim, quantization, [e.message for e in errors])
    # the schema does catch what Atlas refuses
    bad = vector_index_definition(32)
    bad["fields"][0]["similarity"] = "manhattan"
    assert list(validator.iter_errors(bad))
    bad = vector_index_definition(32)
    bad["fields"][0]["numDimensions"] = 9000
    assert list(validator.iter_errors(bad))
    with pytest.raises(RecsysError, match="multiple of 8"):
        vector_index_definition(12, quantization="binary")


def synthetic(n: int, model_id: str, seed: int = 0):
    from recsys_nb.embed import Embeddings

    rng = np.random.default_rng(seed)
    ids = np.arange(500, 500 + n, dtype=np.int64)
    meta = pd.DataFrame({"label": rng.choice(["Bag", "Coat"], n)}, index=pd.Index(ids, name="id"))
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    return Embeddings(model_id, ids, vectors, meta, "pixels")


def test_a_name_resolves_to_its_latest_version_and_pixels_make_thumbnails(mongo):
    store = fresh(mongo)
    try:
        pixels = [np.full((28, 28, 1), i / 40, np.float32) for i in range(40)]
        for model_id, day in (("fm-old", "2026-01-01"), ("fm-new", "2026-02-01")):
            emb = synthetic(40, model_id)
            meta = {"model_id": model_id, "trained_at": day}
            result = store.index_embeddings(
                emb, latent_dim=8, name="fm", meta=meta, images=pixels, batch_size=16
            )
        assert result["thumbnails_written"] == 0  # the second model shares them
        assert store.use("fm").model_id == "fm-new"
        assert store.use("fm-old").model_id == "fm-old"  # an explicit model id
        w, h = jpeg_size(store.use("fm").thumbnail(510)[0])
        assert (w, h) == (28, 28)
        # the key comes from the pixel values: the same pixels as uint8 are the same catalogue
        as_bytes = [np.rint(p * 255).astype(np.uint8) for p in pixels]
        assert catalog_key(list(range(500, 540)), as_bytes, "a") == store.catalog
        with pytest.raises(RecsysError, match="has no stored model files"):
            store.model  # noqa: B018 - vectors only: no encoder to load
    finally:
        store._client.drop_database(store.database_name)
        store.close()


def test_the_vector_search_path_sends_its_pipeline(indexed, memory):
    """No Atlas here: the store runs $vectorSearch when told the index is there, and the
    local mongod's refusal comes back as one clear error (an Atlas test is in test_store)."""
    store, _ = indexed
    remote = MongoStore(store._uri, store.database_name, model="tiny-products", search="auto")
    remote._vector_index[remote.latent_dim] = True  # as if Atlas had reported it queryable
    for query in ({"item_id": memory.ids[0]}, {"vector": memory.vectors[1]}):
        with pytest.raises(RecsysError, match=r"vector search: OperationFailure.*\$vectorSearch"):
            remote.recommend(**query, k=3)
    with pytest.raises(RecsysError, match="unknown id 42: not stored"):
        remote.recommend(42)


def test_a_password_never_shows_on_the_catalogue_paths(
    mongo, tiny_product_model, small_catalog, caplog, monkeypatch, tmp_path
):
    import logging

    monkeypatch.setenv("RECSYS_NB_HOME", str(tmp_path))
    secret = "S3cret-" + uuid.uuid4().hex[:8]
    name = f"t_{uuid.uuid4().hex[:10]}"
    with mongo.client() as admin:
        admin[name].command("createUser", "bob", pwd=secret, roles=["readWrite"])
    uri = f"mongodb://bob:{secret}@127.0.0.1:{mongo.port}/?directConnection=true&authSource={name}"
    with caplog.at_level(logging.DEBUG):
        store = MongoStore(uri, name)
        try:
            store.index(tiny_product_model, small_catalog, batch_size=100)
            remote = MongoStore(uri, name, model="tiny-products")
            assert remote.model.meta["model_id"] == store.model_id
            assert secret not in repr(remote) and secret not in str(remote.list_models())
            for bad in (lambda: remote.use("nope"), lambda: remote.recommend(1)):
                with pytest.raises(RecsysError) as exc:
                    bad()
                assert secret not in str(exc.value)
        finally:
            store._client.drop_database(name)
            store.close()
    assert secret not in caplog.text


def test_a_database_of_the_earlier_format_is_taken_over(
    mongo, tiny_product_model, small_catalog, memory, tmp_path
):
    """Before the catalogue lived in the database, a model's catalogue was its folder path."""
    store = fresh(mongo)
    model_id = tiny_product_model.meta["model_id"]
    try:
        store.models.insert_one(
            {"_id": model_id, "name": "tiny-products", "latent_dim": 16, "n_items": 300,
             "meta": {"model_id": model_id}, "catalog": str(small_catalog), "version": 3}
        )  # fmt: skip
        store.items.insert_one({"_id": "x:1", "catalog": str(small_catalog), "item_id": 1})
        other = tmp_path / "elsewhere"
        other.mkdir()
        emb = embed_catalog(tiny_product_model, small_catalog)
        emb.source = str(other)  # the same ids and images read from another folder
        with pytest.raises(RecsysError, match="another catalogue"):
            store.index(tiny_product_model, embeddings=emb)
        result = store.index(tiny_product_model, small_catalog / ".." / small_catalog.name)
        assert result["catalog"].startswith("cat-") and result["stored"] == len(memory)
        assert store.items.count_documents({"catalog": str(small_catalog)}) == 0
        assert store.use("tiny-products").meta.index.tolist() == memory.ids.tolist()
    finally:
        store._client.drop_database(store.database_name)
        store.close()
