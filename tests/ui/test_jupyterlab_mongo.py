"""The widget in a real JupyterLab on a MongoStore found by URI alone, clicked in Chromium.

The kernel has ``MONGODB_URI`` and empty ``RECSYS_NB_HOME`` / ``RECSYS_NB_DATA`` folders:
no model folder and no image file. The grid's thumbnails, the click's recommendations
and the dropped image's (encoded by the model from GridFS) must be those of the memory
store on the machine that indexed the catalogue. Screenshot:
tests/artifacts/jupyterlab-mongo.png.
"""

from __future__ import annotations

import json
import subprocess

from test_jupyterlab import ARTIFACTS, BIN, K, run_widget_notebook

import recsys_nb
from recsys_nb.mongod import LocalMongo
from recsys_nb.store import MongoStore


def test_widget_from_mongodb_in_jupyterlab(
    browser_ready, tiny_product_model, small_catalog, tmp_path, monkeypatch
):
    memory = recsys_nb.MemoryStore.from_model(tiny_product_model, small_catalog)
    third = int(memory.ids[2])
    image = small_catalog / "images" / f"{third}.jpg"
    with LocalMongo(tmp_path / "mongo") as server:
        with MongoStore(server.uri, "lab") as store:
            store.index(tiny_product_model, small_catalog)
        for name, value in (
            ("MONGODB_URI", server.uri),
            ("RECSYS_NB_MONGO_DB", "lab"),
            ("RECSYS_NB_HOME", str(tmp_path / "home")),
            ("RECSYS_NB_DATA", str(tmp_path / "data")),
        ):
            monkeypatch.setenv(name, value)
        by_cli = subprocess.run(
            [str(BIN / "recsys-nb"), "recommend", "--store", "mongo", "--model",
             "tiny-products", "--id", str(third), "-k", str(K), "--json"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert by_cli.returncode == 0, by_cli.stderr[-3000:]
        root = tmp_path / "lab"
        root.mkdir()
        seen = run_widget_notebook(
            root,
            "from recsys_nb import MongoStore, RecommenderWidget\n"
            f"w = RecommenderWidget(store=MongoStore(model='tiny-products'), k={K})\n"
            "w",
            image,
            "jupyterlab-mongo",
        )
    screenshot = ARTIFACTS / "jupyterlab-mongo.png"

    names = memory.meta["productDisplayName"]
    assert [g["id"] for g in seen["grid"][:3]] == memory.ids[:3].tolist()
    assert [g["alt"] for g in seen["grid"][:3]] == names.iloc[:3].tolist()
    assert "selected: None" in seen["before"]

    expected = memory.recommend(third, k=K)["id"].tolist()
    assert [int(r["id"]) for r in json.loads(by_cli.stdout)] == expected
    assert seen["click"]["query"] == str(third)
    assert [r["id"] for r in seen["click"]["recs"]] == expected
    assert all(r["loaded"] for r in seen["click"]["recs"])  # thumbnails from the database
    assert f"selected: {third}" in seen["after"]
    assert screenshot.stat().st_size > 10_000

    from_image = memory.recommend(image=image, k=K)["id"].tolist()
    assert from_image[0] == third
    assert [r["id"] for r in seen["image"]["recs"]] == from_image
    assert "selected: None image" in seen["after_image"]
    assert not (tmp_path / "home" / "models").exists()
