"""The widget's comparison view (``compare=``) and its link to the latent map (``link``).

Real stores answer (the tiny model's MemoryStore, HOG and colour histograms over the small
catalogue's images); messages go through the widget as the kernel delivers them.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import traitlets as t
from PIL import Image

import recsys_nb
from recsys_nb import explore
from recsys_nb.embed import Embeddings
from recsys_nb.errors import RecsysError
from recsys_nb.recommend import FeatureStore
from recsys_nb.widget import RecommenderWidget, picture
from tests.test_widget import RecordingComm, assert_thumbnails, from_js


@pytest.fixture(scope="module")
def store(tiny_product_model, small_catalog):
    return recsys_nb.MemoryStore.from_model(tiny_product_model, small_catalog)


@pytest.fixture(scope="module")
def hog(small_catalog):
    return FeatureStore("hog", small_catalog)


@pytest.fixture(scope="module")
def colours(small_catalog):
    return FeatureStore("colour_hist", small_catalog)


@pytest.fixture
def compared(store, hog, colours):
    w = RecommenderWidget(store=store, compare={"hog": hog, "colour": colours}, k=6)
    w.comm = RecordingComm()
    return w


def test_feature_store_recommends_by_id_and_by_image(hog, small_catalog):
    item_id = int(hog.ids[4])
    by_id = hog.recommend(item_id, k=5)
    assert item_id not in by_id["id"].tolist() and len(by_id) == 5
    assert by_id["score"].is_monotonic_decreasing
    path = small_catalog / "images" / f"{item_id}.jpg"
    by_image = hog.recommend(image=path, k=5)
    assert by_image["id"].iloc[0] == item_id  # its own photo, described the same way
    assert by_image["score"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert set(hog.thumbnails([item_id])) == {item_id}
    with pytest.raises(RecsysError, match="unknown image descriptor 'sift'"):
        FeatureStore("sift", small_catalog)


def test_rows_answer_the_same_query_with_their_marks_and_shares(compared, store, hog, colours):
    item_id = int(store.ids[11])
    reply, buffers = from_js(compared, {"kind": "recommend", "uuid": "c1", "item_id": item_id})
    rows = compared.compared
    assert [r["name"] for r in rows] == [store.model.name, "hog", "colour"]
    for row, answer in zip(rows, (store, hog, colours), strict=True):
        expected = answer.recommend(item_id, k=6)
        assert [i["id"] for i in row["items"]] == expected["id"].tolist(), row["name"]
        np.testing.assert_allclose([i["score"] for i in row["items"]], expected["score"], rtol=1e-5)
    assert rows[0]["items"] == [
        {**r, "same": rows[0]["items"][n]["same"]} for n, r in enumerate(compared.recommendations)
    ]

    meta = store.meta
    query = meta.loc[item_id]
    for row in rows:
        for item in row["items"]:
            other = meta.loc[item["id"]]
            want = [c for c in ("articleType", "baseColour") if other[c] == query[c]]
            assert item["same"] == want
        for column in ("articleType", "baseColour"):
            share = np.mean([column in i["same"] for i in row["items"]])
            assert row["share"][column] == pytest.approx(share, abs=1e-4)
        assert row["error"] == ""

    # The reply carries every row's products once, with their thumbnails.
    main = {i["id"] for i in reply["items"]} | {item_id}
    others = {i["id"] for r in rows[1:] for i in r["items"]}
    assert {i["id"] for i in reply["also"]} == others - main
    assert len(reply["also"]) == len(others - main)
    assert_thumbnails(reply["also"], buffers)

    table = compared.comparison
    assert len(table) == 18 and list(table["embedding"].unique()) == [r["name"] for r in rows]
    assert table["same_articleType"].tolist() == [
        "articleType" in i["same"] for r in rows for i in r["items"]
    ]
    shares = compared.comparison_shares
    assert shares.loc["hog", "baseColour"] == rows[1]["share"]["baseColour"]


def test_filters_and_same_type_hold_for_every_row(compared, store):
    item_id = int(store.ids[3])
    compared.same_type = True
    compared.selected = item_id
    for row in compared.compared:
        assert row["share"]["articleType"] == 1.0, row["name"]
    compared.same_type = False
    compared.filters = {"gender": ["Women"]}
    women = set(store.meta.index[store.meta["gender"] == "Women"])
    for row in compared.compared:
        assert {i["id"] for i in row["items"]} <= women, row["name"]


def test_an_image_query_is_compared_without_marks(compared, store, small_catalog):
    item_id = int(store.ids[5])
    data = (small_catalog / "images" / f"{item_id}.jpg").read_bytes()
    compared.recommend_image(data)
    rows = compared.compared
    assert len(rows) == 3 and all(r["error"] == "" for r in rows)
    assert rows[1]["items"][0]["id"] == item_id  # HOG finds the photo's own product
    assert all(i["same"] == [] for r in rows for i in r["items"]) and rows[0]["share"] == {}


def test_a_store_that_cannot_answer_gives_a_row_with_its_error(store):
    emb = store.embeddings
    part = recsys_nb.MemoryStore(
        Embeddings(emb.model_id, emb.ids[:100], emb.vectors[:100], emb.meta.iloc[:100], "part")
    )
    w = RecommenderWidget(store=store, compare={"part": part}, k=3)
    w.selected = int(store.ids[200])
    assert len(w.compared[0]["items"]) == 3
    assert w.compared[1]["items"] == [] and "not in" in w.compared[1]["error"]
    w.selected = int(store.ids[20])
    assert w.compared[1]["error"] == "" and len(w.compared[1]["items"]) == 3
    w.recommendations = [{"id": int(store.ids[1])}]  # set from Python: the rows go stale
    assert w.compared == []


def test_compare_arguments_are_checked(store, hog):
    with pytest.raises(RecsysError, match="at most 3 embeddings"):
        RecommenderWidget(store=store, compare=[hog, hog, hog, hog])
    with pytest.raises(RecsysError, match="is not a model folder"):
        RecommenderWidget(store=store, compare=[42])
    w = RecommenderWidget(store=store, compare=[hog, hog])
    assert w.row_names == [store.model.name, "hog", "hog'"]
    plain = RecommenderWidget(store=store)
    plain.selected = int(store.ids[0])
    assert plain.compared == [] and plain.comparison.empty


def test_linked_to_the_map_both_ways(store):
    w = RecommenderWidget(store=store, k=4)
    w.comm = RecordingComm()
    explorer = explore.LatentExplorer.from_store(store, method="pca")
    link = w.link(explorer)

    chosen = [int(i) for i in store.ids[[5, 9, 40, 41, 250]]]
    explorer.select(chosen)
    assert w.subset == chosen and w.grid_ids.tolist() == chosen
    reply, _ = from_js(w, {"kind": "page", "uuid": "p", "search": "", "filters": {}, "limit": 24})
    assert reply["total"] == 5 and [i["id"] for i in reply["items"]] == chosen

    item_id = chosen[2]
    reply, _ = from_js(w, {"kind": "recommend", "uuid": "r", "item_id": item_id})
    recs = [i["id"] for i in reply["items"]]
    assert sorted(explorer.highlighted) == sorted(recs) and explorer._query_id == item_id

    explorer.select([])
    assert w.subset is None and len(w.grid_ids) == len(store.ids)
    link.unlink()
    explorer.select(chosen[:2])
    assert w.subset is None
    with pytest.raises(t.TraitError, match="not in this catalogue"):
        w.subset = [int(store.ids[0]), 123456789]


def test_the_picture_for_readers_without_a_kernel_shows_every_row(compared, store):
    compared.selected = int(store.ids[8])
    data, _ = compared._repr_mimebundle_()
    png = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    line = picture.TITLE + picture.CELL[1] + picture.CAPTION + picture.GAP
    assert png.size == (
        picture.GAP + 6 * (picture.CELL[0] + picture.GAP),  # k = 6 cards a line
        picture.TITLE + picture.GAP + 4 * line,  # the query, then three rows
    )
