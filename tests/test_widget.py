"""RecommenderWidget: the Python half of the contract, answered by a real MemoryStore.

Messages are fed in exactly as the kernel delivers them from the front end
(``Widget._handle_msg``) and everything the widget sends is read back from a
recording comm, so trait updates and custom replies are checked as JS sees them.
"""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib

import numpy as np
import pytest
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image

import recsys_nb
from recsys_nb import widget as widget_module
from recsys_nb.errors import RecsysError
from recsys_nb.widget import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    ImageTooLargeError,
    RecommenderWidget,
    bundle_paths,
)


class RecordingComm:
    """Stands in for the kernel comm: keeps every message the widget sends."""

    kernel = "recording"
    comm_id = "test-comm"

    def __init__(self):
        self.sent: list[tuple[dict, list]] = []

    def send(self, data=None, buffers=None, **_):
        self.sent.append((data, [bytes(b) for b in (buffers or [])]))

    def on_msg(self, *_):
        pass

    def close(self, *_, **__):
        pass

    def customs(self) -> list[tuple[dict, list]]:
        return [(d["content"], b) for d, b in self.sent if d["method"] == "custom"]

    def updates(self) -> list[dict]:
        return [d["state"] for d, _ in self.sent if d["method"] == "update"]


@pytest.fixture(scope="module")
def store(tiny_product_model, small_catalog):
    return recsys_nb.MemoryStore.from_model(tiny_product_model, small_catalog)


@pytest.fixture
def comm():
    return RecordingComm()


@pytest.fixture
def widget(store, comm):
    bundle_paths()  # fail early, with the build command, if the bundle is missing
    w = RecommenderWidget(store=store)
    w.comm = comm
    return w


def from_js(w, content, buffers=()):
    """Deliver a custom message as the kernel does; return the reply and its buffers."""
    before = len(w.comm.customs())
    w._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": list(buffers)}
    )
    replies = [r for r in w.comm.customs()[before:] if r[0].get("kind") != "prefetch"]
    assert len(replies) == 1, replies
    reply, buffers = replies[0]
    assert reply["uuid"] == content.get("uuid")
    return reply, buffers


def assert_thumbnails(items, buffers):
    for item in items:
        data = buffers[item["thumb"]]
        assert item["mime"] == "image/jpeg" and data[:3] == b"\xff\xd8\xff"
        assert Image.open(io.BytesIO(data)).size == (60, 80)


def test_state_is_plain_json_without_binary(widget):
    state, buffer_paths, buffers = _remove_buffers(widget.get_state())
    assert buffers == [] and buffer_paths == []
    assert state["selected"] is None and state["recommendations"] == []
    assert state["k"] == 10 and state["page_size"] == 24
    assert {"gender", "masterCategory", "articleType", "baseColour"} <= set(state["facets"])
    assert "Women" in state["facets"]["gender"]
    assert "export{" in state["_esm"].replace(" ", "") and ".rnb-root" in state["_css"]


def test_page_request_sends_only_the_page_with_binary_thumbnails(widget, store):
    reply, buffers = from_js(
        widget,
        {"kind": "page", "uuid": "p1", "search": "", "filters": {}, "offset": 24, "limit": 12},
    )
    assert reply["ok"] and reply["total"] == len(store) and reply["offset"] == 24
    assert [i["id"] for i in reply["items"]] == store.ids[24:36].tolist()
    assert len(buffers) == 12 and [i["thumb"] for i in reply["items"]] == list(range(12))
    assert_thumbnails(reply["items"], buffers)
    first = reply["items"][0]
    row = store.meta.loc[first["id"]]
    assert first["name"] == row["productDisplayName"]
    assert first["labels"]["articleType"] == row["articleType"]
    assert "base64" not in str(reply) and "image_path" not in str(reply)


def test_page_search_and_filters(widget, store):
    meta = store.meta
    reply, _ = from_js(
        widget,
        {
            "kind": "page",
            "uuid": "p2",
            "search": "SHIRT",
            "filters": {"gender": ["Men"]},
            "offset": 0,
            "limit": 200,
        },
    )
    expected = meta[
        meta["productDisplayName"].str.lower().str.contains("shirt") & (meta["gender"] == "Men")
    ].index.tolist()
    assert expected and [i["id"] for i in reply["items"]] == expected[:200]
    assert reply["total"] == len(expected)
    item_id = int(store.ids[7])
    reply, _ = from_js(
        widget,
        {
            "kind": "page",
            "uuid": "p3",
            "search": str(item_id),
            "filters": {},
            "offset": 0,
            "limit": 5,
        },
    )
    assert item_id in [i["id"] for i in reply["items"]]


def test_click_request_sets_traits_and_replies_before_the_state(widget, store, comm):
    item_id = int(store.ids[2])
    seen = []
    widget.observe(lambda change: seen.append(change["new"]), "selected")
    before = len(comm.sent)
    reply, buffers = from_js(widget, {"kind": "recommend", "uuid": "r1", "item_id": item_id})

    expected = store.recommend(item_id, k=10)
    assert reply["ok"] and reply["selected"] == item_id and reply["query"]["id"] == item_id
    assert [i["id"] for i in reply["items"]] == expected["id"].tolist()
    np.testing.assert_allclose([i["score"] for i in reply["items"]], expected["score"], rtol=1e-6)
    assert [i["rank"] for i in reply["items"]] == list(range(1, 11))
    assert len(buffers) == 11
    assert_thumbnails([reply["query"], *reply["items"]], buffers)

    assert widget.selected == item_id and seen == [item_id]
    assert [r["id"] for r in widget.recommendations] == expected["id"].tolist()
    assert widget.table()["id"].tolist() == expected["id"].tolist()
    methods = [d["method"] for d, _ in comm.sent[before:]]
    assert methods[:2] == ["custom", "update"], "reply first, then one state update"
    assert set(methods[2:]) == {"custom"}, "then only the prefetch pushes"
    state = comm.updates()[-1]
    assert state["selected"] == item_id and len(state["recommendations"]) == 10


def test_a_click_sends_ahead_what_the_next_click_shows(widget, store, comm):
    first = int(store.ids[7])
    reply, _ = from_js(widget, {"kind": "recommend", "uuid": "a", "item_id": first})
    pushes = [(c, b) for c, b in comm.customs() if c["kind"] == "prefetch"]
    assert pushes and all("uuid" not in c and 0 < len(c["items"]) <= 10 for c, _ in pushes)
    for content, buffers in pushes:
        assert_thumbnails(content["items"], buffers)
    push = {"items": [item for content, _ in pushes for item in content["items"]]}
    sent = {reply["query"]["id"]} | {i["id"] for i in reply["items"] + push["items"]}
    assert len(sent) == 1 + len(reply["items"]) + len(push["items"]), "nothing sent twice"
    rec_ids = [i["id"] for i in reply["items"]]
    expected = set(store.neighbours(rec_ids, k=10).tolist())
    assert {i["id"] for i in push["items"]} == expected - {first}
    for rec in rec_ids:  # whichever recommendation is clicked next, its pictures are there
        assert set(store.recommend(rec, k=10)["id"]) <= sent
    comm.sent.clear()
    from_js(widget, {"kind": "recommend", "uuid": "b", "item_id": rec_ids[3]})
    pushed = [c for c, _ in comm.customs() if c["kind"] == "prefetch"]
    assert all(not sent & {i["id"] for i in p["items"]} for p in pushed), "sent again"


def test_setting_selected_from_python_recomputes(widget, store, comm):
    item_id = int(store.ids[5])
    widget.selected = item_id
    assert [r["id"] for r in widget.recommendations] == store.recommend(item_id)["id"].tolist()
    assert comm.updates()[-1]["recommendations"] == widget.recommendations
    widget.k = 3
    assert len(widget.recommendations) == 3
    widget.filters = {"gender": ["Women"]}
    ids = [r["id"] for r in widget.recommendations]
    assert ids == store.recommend(item_id, k=3, filters={"gender": "Women"})["id"].tolist()
    assert set(store.meta.loc[ids, "gender"]) == {"Women"}
    widget.selected = None
    assert widget.recommendations == []


def test_items_request_for_ids_python_set(widget, store):
    widget.recommendations = [{"id": int(store.ids[9]), "score": 0.5}]
    assert widget.recommendations == [{"id": int(store.ids[9]), "score": 0.5, "rank": 1}]
    ids = [int(store.ids[9]), int(store.ids[10]), 123456789]
    reply, buffers = from_js(widget, {"kind": "items", "uuid": "i1", "ids": ids})
    assert [i["id"] for i in reply["items"]] == ids[:2]
    assert len(buffers) == 2


def test_image_request_recommends_for_a_new_product(widget, store, small_catalog):
    item_id = int(store.ids[2])
    data = (small_catalog / "images" / f"{item_id}.jpg").read_bytes()
    widget.selected = int(store.ids[0])
    reply, buffers = from_js(
        widget,
        {"kind": "recommend", "uuid": "u1", "image": {"name": "x.jpg", "type": "image/jpeg"}},
        [memoryview(data)],
    )
    expected = store.recommend(image=small_catalog / "images" / f"{item_id}.jpg", k=10)
    assert reply["ok"] and reply["query"] is None and reply["selected"] is None
    assert [i["id"] for i in reply["items"]] == expected["id"].tolist()
    assert reply["items"][0]["id"] == item_id  # the catalogue item itself comes first
    assert reply["items"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert widget.selected is None and widget.query_image == data
    assert widget.recommendations[0]["id"] == item_id
    widget.k = 4  # a setting change recomputes for the image query too
    assert [r["id"] for r in widget.recommendations] == expected["id"].tolist()[:4]


def test_errors_come_back_as_replies(widget, comm):
    reply, _ = from_js(widget, {"kind": "recommend", "uuid": "e1", "item_id": 123456789})
    assert not reply["ok"] and "unknown product id 123456789" in reply["error"]
    assert widget.error == reply["error"]
    reply, _ = from_js(
        widget,
        {"kind": "recommend", "uuid": "e2", "image": {"name": "a.txt", "type": "text/plain"}},
        [b"not an image"],
    )
    assert not reply["ok"] and "not an image file" in reply["error"]
    reply, _ = from_js(widget, {"kind": "page", "uuid": "e3", "filters": {"colour": ["Red"]}})
    assert not reply["ok"] and "cannot filter on 'colour'" in reply["error"]
    n = len(comm.sent)
    widget._handle_msg({"content": {"data": {"method": "custom", "content": {"kind": "nope"}}}})
    assert len(comm.sent) == n  # unknown kinds are ignored


def test_trait_validation(widget):
    with pytest.raises(Exception, match="unknown product id"):
        widget.selected = 123456789
    with pytest.raises(Exception, match="k must be between"):
        widget.k = 0
    with pytest.raises(Exception, match="cannot filter on"):
        widget.filters = {"nope": ["x"]}


def test_constructor(store, tiny_product_model, small_catalog):
    with pytest.raises(TypeError, match="unexpected argument"):
        RecommenderWidget(store=store, colour="red")
    with pytest.raises(RecsysError, match="model folder"):
        RecommenderWidget()
    w = RecommenderWidget(tiny_product_model.path, small_catalog, selected=int(store.ids[1]), k=5)
    assert [r["id"] for r in w.recommendations] == store.recommend(store.ids[1], k=5)["id"].tolist()


def test_any_store_with_recommend_and_meta_plugs_in(store):
    class OtherStore:  # e.g. the MongoDB store: a recommend() and a meta table
        meta = store.meta

        def recommend(self, item_id=None, *, vector=None, image=None, k=10, filters=None):
            return store.recommend(item_id, vector=vector, image=image, k=k, filters=filters)

    w = RecommenderWidget(store=OtherStore(), selected=int(store.ids[3]))
    assert len(w.recommendations) == 10


def test_store_without_meta_takes_the_catalogue_table(store, small_catalog, comm):
    class NoMeta:  # like MongoStore: recommend() only
        def recommend(self, item_id=None, *, vector=None, image=None, k=10, filters=None):
            return store.recommend(item_id, vector=vector, image=image, k=k, filters=filters)

    with pytest.raises(RecsysError, match="needs the catalogue's metadata"):
        RecommenderWidget(store=NoMeta())
    w = RecommenderWidget(store=NoMeta(), catalog=small_catalog)
    w.comm = comm
    reply, buffers = from_js(w, {"kind": "recommend", "uuid": "m1", "item_id": int(store.ids[4])})
    assert [i["id"] for i in reply["items"]] == store.recommend(store.ids[4])["id"].tolist()
    assert_thumbnails(reply["items"], buffers)


def test_missing_bundle_says_how_to_build(tmp_path):
    with pytest.raises(RecsysError, match=r"not built .*npm ci && npm run build"):
        widget_module.bundle_paths(tmp_path)  # a folder without the bundle
    assert all(p.is_file() for p in widget_module.bundle_paths())  # the package's own


def test_exported_from_package():
    assert recsys_nb.RecommenderWidget is RecommenderWidget


def png_claiming(width: int, height: int) -> bytes:
    """A PNG file whose header says ``width`` x ``height`` (its pixels: one, truncated)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR's first fields
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_over_size_images_are_refused_before_decoding(widget, store, comm):
    item_id = int(store.ids[1])
    widget.selected = item_id
    shown, errors = list(widget.recommendations), []
    for width, height in ((12_000, 12_000), (30_000, 30_000), (MAX_UPLOAD_PIXELS + 1, 1)):
        data = png_claiming(width, height)
        start = time.perf_counter()
        reply, _ = from_js(
            widget,
            {"kind": "recommend", "uuid": "big", "image": {"name": "big.png", "type": "image/png"}},
            [memoryview(data)],
        )
        assert time.perf_counter() - start < 0.5
        assert not reply["ok"] and reply["error"].startswith("image too large: ")
        assert "\n" not in reply["error"] and widget.error == reply["error"]
        with pytest.raises(ImageTooLargeError, match="image too large"):
            widget.recommend_image(data)
        errors.append(reply["error"])
    assert errors[0] == "image too large: 12000 x 12000 pixels (144 megapixels; at most 40)"
    too_many_bytes = b"\x89PNG" + bytes(MAX_UPLOAD_BYTES)
    reply, _ = from_js(
        widget,
        {"kind": "recommend", "uuid": "big2", "image": {"name": "b.png", "type": "image/png"}},
        [memoryview(too_many_bytes)],
    )
    assert not reply["ok"] and reply["error"] == "image file too large: 20.1 MB (at most 20 MB)"
    # the query did not change
    assert widget.selected == item_id and widget.recommendations == shown


def test_same_type_recommends_the_query_type_only(widget, store):
    meta = store.meta
    item_id = int(store.ids[3])
    kind = meta.loc[item_id, "articleType"]
    widget.selected = item_id
    assert set(meta.loc[[r["id"] for r in widget.recommendations], "articleType"]) != {kind}
    widget.same_type = True  # recomputed at once
    ids = [r["id"] for r in widget.recommendations]
    assert ids == store.recommend(item_id, filters={"articleType": kind})["id"].tolist()
    assert set(meta.loc[ids, "articleType"]) == {kind}
    other = int(meta.index[meta["articleType"] != kind][0])
    reply, _ = from_js(widget, {"kind": "recommend", "uuid": "t1", "item_id": other})
    assert {i["labels"]["articleType"] for i in reply["items"]} == {meta.loc[other, "articleType"]}
    widget.filters = {"gender": [meta.loc[other, "gender"]]}  # both apply
    assert set(meta.loc[[r["id"] for r in widget.recommendations], "gender"]) == {
        meta.loc[other, "gender"]
    }
    widget.same_type = False
    widget.filters = {}
    assert [r["id"] for r in widget.recommendations] == store.recommend(other)["id"].tolist()


def test_same_type_is_ignored_for_an_image_query(widget, store, small_catalog):
    widget.same_type = True
    item_id = int(store.ids[2])
    table = widget.recommend_image((small_catalog / "images" / f"{item_id}.jpg").read_bytes())
    expected = store.recommend(image=small_catalog / "images" / f"{item_id}.jpg", k=10)
    assert table["id"].tolist() == expected["id"].tolist() and widget.error == ""


def test_on_select_callbacks(widget, store, small_catalog):
    seen, also = [], []

    def first(item_id):
        seen.append((item_id, widget.results["id"].tolist()))

    widget.on_select(first)
    widget.on_select(also.append)
    widget.on_select(also.append)  # registered once
    a, b = int(store.ids[4]), int(store.ids[6])
    from_js(widget, {"kind": "recommend", "uuid": "c1", "item_id": a})  # a click
    widget.selected = b  # from Python
    from_js(widget, {"kind": "recommend", "uuid": "c2", "item_id": b})  # the same, clicked
    data = (small_catalog / "images" / f"{a}.jpg").read_bytes()
    from_js(
        widget,
        {"kind": "recommend", "uuid": "c3", "image": {"name": "a.jpg", "type": "image/jpeg"}},
        [memoryview(data)],
    )  # an image query: no call
    assert [s[0] for s in seen] == [a, b, b] and also == [a, b, b]
    # the recommendations were ready when the callback ran
    assert seen[0][1] == store.recommend(a)["id"].tolist()
    widget.on_select(first, remove=True)
    widget.selected = a
    assert len(seen) == 3 and also[-1] == a
    from_js(widget, {"kind": "recommend", "uuid": "e", "item_id": 123456789})  # failed: no call
    assert also[-1] == a and len(also) == 4


def test_python_reads_the_results_and_the_grid(widget, store):
    meta = store.meta
    assert widget.results.empty and list(widget.results.columns[:3]) == ["rank", "id", "score"]
    widget.selected = int(store.ids[0])
    results = widget.results
    assert results["id"].tolist() == [r["id"] for r in widget.recommendations]
    assert (
        results["productDisplayName"].tolist()
        == meta.loc[results["id"], "productDisplayName"].tolist()
    )
    assert widget.grid_ids.tolist() == store.ids.tolist()
    widget.search, widget.filters = "shirt", {"gender": ["Men"]}  # as the front end sets them
    expected = meta[
        meta["productDisplayName"].str.lower().str.contains("shirt") & (meta["gender"] == "Men")
    ].index.tolist()
    assert widget.grid_ids.tolist() == expected


def test_the_output_carries_a_picture_of_the_view(widget, store):
    """Saved without widget state (GitHub, nbviewer), the output still shows the widget."""

    def picture():
        data, _ = widget._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in data
        return Image.open(io.BytesIO(base64.b64decode(data["image/png"])))

    grid = picture()
    assert grid.width > 600 and grid.height > 150  # the first grid page
    widget.k = 4
    widget.selected = int(store.ids[3])
    shown = picture()
    assert shown.size != grid.size  # the query and its 4 recommendations: one row
    assert shown.height < grid.height and shown.width == 8 + 5 * (120 + 8)
