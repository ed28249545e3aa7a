"""The explore stage: projections (UMAP cached on disk), figures, image grids, HTML export."""

from __future__ import annotations

import json
import re
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import recsys_nb
from recsys_nb import explore
from recsys_nb.errors import RecsysError


@pytest.fixture(scope="module")
def store(tiny_product_model, small_catalog):
    return recsys_nb.MemoryStore.from_model(tiny_product_model, small_catalog)


@pytest.fixture(scope="module")
def items(tiny_product_model, small_catalog):
    return explore.model_items(tiny_product_model, small_catalog)


@pytest.fixture(scope="module")
def umap_frame(store, tiny_product_model):
    coords = explore.umap_projection(store.embeddings, tiny_product_model)
    return explore.projection_frame(store.embeddings, coords)


def test_umap_is_seeded_and_cached(store, tiny_product_model, umap_frame):
    cached = sorted(tiny_product_model.path.glob("umap-*.npz"))
    assert len(cached) == 1
    again = explore.umap_projection(store.embeddings, tiny_product_model)
    np.testing.assert_array_equal(again, umap_frame[["x", "y"]].to_numpy())
    # another seed is another cache entry
    explore.umap_projection(store.embeddings, tiny_product_model, seed=1)
    assert len(list(tiny_product_model.path.glob("umap-*.npz"))) == 2
    # the cache is really read: a doctored file is returned as it is
    doctored = np.zeros((len(store), 2), np.float32)
    np.savez(cached[0], coords=doctored)
    np.testing.assert_array_equal(
        explore.umap_projection(store.embeddings, tiny_product_model), doctored
    )
    np.savez(cached[0], coords=umap_frame[["x", "y"]].to_numpy())


def test_umap_without_cache_is_deterministic(store):
    vectors = store.vectors[:80]
    a = explore.umap_projection(vectors, n_neighbors=5)
    b = explore.umap_projection(vectors, n_neighbors=5)
    assert a.shape == (80, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    with pytest.raises(RecsysError, match="at least 3"):
        explore.umap_projection(vectors[:2])


def test_projection_frame_and_pca(store, umap_frame):
    assert list(umap_frame.index[:3]) == list(store.ids[:3])
    assert {"x", "y", "articleType", "baseColour", "image_path"} <= set(umap_frame.columns)
    coords, ratio = explore.pca_projection(store.embeddings)
    assert coords.shape == (len(store), 2) and ratio.shape == (2,) and ratio.sum() <= 1.0
    for c in (coords, umap_frame[["x", "y"]].to_numpy()):
        score = explore.neighbour_preservation(store.embeddings, c, k=5)
        assert 0.0 <= score <= 1.0
    # unit vectors in 2-d mapped to themselves keep every neighbour
    angles = np.random.default_rng(0).uniform(0, 2 * np.pi, 50)
    circle = np.column_stack([np.cos(angles), np.sin(angles)])
    assert explore.neighbour_preservation(circle, circle, k=5) == 1.0


def test_map_figure_traces(umap_frame):
    fig = explore.map_figure(umap_frame, "masterCategory")
    ids = [c[0] for trace in fig.data for c in trace.customdata]
    assert sorted(ids) == sorted(umap_frame.index)
    assert sum(len(t.x) for t in fig.data) == len(umap_frame)
    fig = explore.map_figure(umap_frame, "articleType", max_legend=3)
    assert len(fig.data) == 4 and fig.data[-1].name.startswith("other")
    with pytest.raises(RecsysError, match="cannot colour"):
        explore.map_figure(umap_frame, "nope")


def test_latent_explorer_selection(umap_frame):
    ex = explore.LatentExplorer(umap_frame, color="masterCategory")
    assert ex.selection().empty and ex.selection_grid() is None
    picked = list(umap_frame.index[[0, 5, 9]])
    sel = ex.select(picked)
    assert sorted(sel.index) == sorted(picked)
    assert ex.grid.value and "3 selected" in ex.grid_caption.value
    selected_points = sum(len(t.selectedpoints or ()) for t in ex.figure.data)
    assert selected_points == 3
    grid = ex.selection_grid()
    assert (grid.rows, grid.cols) == (1, 8)
    x, y = umap_frame["x"], umap_frame["y"]
    boxed = ex.select_box(x.min(), x.max(), y.min(), y.median())
    inside = (y <= y.median()).sum()
    assert len(boxed) == inside
    ex.color_by("baseColour")  # the selection stays, on the new traces
    assert ex.color_menu.value == "baseColour" and len(ex.selection()) == inside
    assert sum(len(t.selectedpoints or ()) for t in ex.figure.data) == inside
    ex.show_product(umap_frame.index[1])
    assert ex.preview.value[:2] == b"\xff\xd8"  # a JPEG
    assert str(umap_frame.index[1]) in ex.caption.value
    ex.select([])
    assert ex.selection().empty and ex.grid.value == b""


def _png(data: str):
    import base64
    import io

    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_figures_carry_a_picture_for_readers_without_a_kernel(umap_frame, tiny_product_model):
    """A live figure's output holds the widget view and a PNG drawn from its traces."""
    fig = explore.map_figure(umap_frame, "articleType", widget=True, title="by type")
    bundle = fig._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    picture = _png(bundle["image/png"])
    assert picture.size == (800, 560)  # the layout's height, the default width
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    # every category's colour is drawn (plotly's sequence, the others light grey)
    for trace, hex_colour in zip(fig.data[:2], fig.layout.template.layout.colorway, strict=False):
        rgb = np.array([int(hex_colour[j : j + 2], 16) for j in (1, 3, 5)])
        alpha = trace.marker.opacity  # a lone dot: its colour over white
        blended = alpha * rgb + (1 - alpha) * 255
        assert (np.abs(pixels - blended).sum(1) < 30).any(), (trace.name, hex_colour)
    assert "by type" in bundle["text/plain"]
    # an empty figure and a loss curve draw too; an unsupported trace is named in the title
    history = explore.history_figure(tiny_product_model)
    assert _png(history._repr_mimebundle_()["image/png"]).size == (800, 320)
    from recsys_nb.explore.static import LiveFigure, figure_png

    odd = LiveFigure()
    odd.add_bar(x=[1, 2], y=[3, 4])
    assert figure_png(odd)[:8] == b"\x89PNG\r\n\x1a\n"
    explorer = explore.LatentExplorer(umap_frame)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert _png(bundle["image/png"]).size[1] == 560
    assert bundle["text/plain"].startswith("LatentExplorer(")


def test_map_agreement_counts_same_labels_among_map_neighbours():
    frame = pd.DataFrame(
        {
            "x": [0.0, 0.1, 0.2, 10.0, 10.1, 10.2],
            "y": [0.0] * 6,
            "articleType": ["a", "a", "a", "b", "b", "b"],
            "baseColour": ["red", "blue", "red", "red", "blue", "red"],
        }
    )
    agree = explore.map_agreement(frame, k=2)
    assert agree["articleType"] == 1.0  # both neighbours of every point share its type
    # colours: the outer red points see one red and one blue, the blue ones two reds
    assert agree["baseColour"] == pytest.approx((0.5 + 0 + 0.5) * 2 / 6)
    with pytest.raises(RecsysError, match="k=6"):
        explore.map_agreement(frame, k=6)


def _dense_neighbour_preservation(vectors, coords, k):
    """The n x n reference: dot products in latent space, Euclidean distances in 2-D."""
    n = len(vectors)
    scores = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    np.fill_diagonal(scores, -np.inf)
    latent = np.argsort(-scores, axis=1)[:, :k]
    d2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    flat = np.argsort(d2, axis=1)[:, :k]
    hits = sum(len(set(a) & set(b)) for a, b in zip(latent.tolist(), flat.tolist(), strict=True))
    return hits / (n * k)


def test_neighbour_preservation_equals_the_dense_computation():
    rng = np.random.default_rng(3)
    raw = rng.standard_normal((300, 8)).astype(np.float32) * [3, 3, 1, 1, 1, 1, 1, 1]
    vectors = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    coords = vectors[:, :2] + 0.1 * rng.standard_normal((300, 2))
    for k in (1, 5, 10):
        expected = _dense_neighbour_preservation(vectors, coords, k)
        assert 0.05 < expected < 0.95  # a score with something to get right
        assert explore.neighbour_preservation(vectors, coords, k) == pytest.approx(expected)
    # vectors that are not unit length: dot products, as top_k ranks them
    expected = _dense_neighbour_preservation(raw, coords, 5)
    assert expected > 0 and explore.neighbour_preservation(raw, coords, 5) == pytest.approx(
        expected
    )
    with pytest.raises(RecsysError, match="k must be"):
        explore.neighbour_preservation(vectors, coords, k=300)
    with pytest.raises(RecsysError, match="coords must be"):
        explore.neighbour_preservation(vectors, coords[:10], k=5)


def test_neighbour_preservation_memory_grows_with_n_times_k():
    # 20,000 items: an n x n float64 matrix would be 3.2 GB (15 GB at 44k)
    n, k = 20_000, 10
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 16)).astype(np.float32)
    coords = vectors[:, :2] + 0.3 * rng.standard_normal((n, 2))
    tracemalloc.start()
    started = time.monotonic()
    try:
        score = explore.neighbour_preservation(vectors, coords, k)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1e9, f"peak {peak / 1e6:.0f} MB"
    assert time.monotonic() - started < 60
    assert 0.0 < score < 1.0


def test_base_colours_cover_the_catalogue(products_dir):
    names = pd.read_csv(products_dir / "styles.csv")["baseColour"].dropna().unique()
    assert len(names) >= 40
    missing = sorted(set(names) - set(explore.BASE_COLOURS))
    assert not missing, f"no colour for {missing}"
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in explore.BASE_COLOURS.values())
    assert len(set(explore.BASE_COLOURS.values())) == len(explore.BASE_COLOURS)
    assert explore.base_colour("Navy Blue") == explore.BASE_COLOURS["Navy Blue"] != "#9e9e9e"
    assert explore.base_colour(" off white ") == explore.BASE_COLOURS["Off White"]
    assert explore.base_colour("Ultraviolet") == explore.base_colour("") == explore.UNKNOWN_COLOUR
    for light in ("White", "Off White", "Cream", "Yellow"):
        assert explore.needs_outline(explore.base_colour(light)), light
    for dark in ("Black", "Navy Blue", "Maroon", "Red", "Charcoal"):
        assert not explore.needs_outline(explore.base_colour(dark)), dark


def test_map_figure_in_product_colours(umap_frame):
    fig = explore.map_figure(umap_frame, "baseColour")
    names = {t.name.rsplit(" (", 1)[0]: t for t in fig.data}
    assert "other" not in names  # every colour gets its own trace
    assert len(names) == umap_frame["baseColour"].replace("", "(none)").nunique()
    assert {"White", "Black", "Blue"} <= set(names)
    for value, trace in names.items():
        assert trace.marker.color == explore.base_colour(value), value
        outlined = (trace.marker.line.width or 0) > 0
        assert outlined == (explore.needs_outline(trace.marker.color) or value == "Multi"), value
    assert names["White"].marker.line.color == "#333333"
    # any other column keeps plotly's palette, and every figure greys what is not selected
    other = explore.map_figure(umap_frame, "masterCategory")
    assert other.data[0].marker.color is None
    for trace in (*fig.data, *other.data):
        assert trace.unselected.marker.color == "#cfcfcf" and trace.unselected.marker.opacity > 0


def _words_match(text: str, row: pd.Series, columns) -> bool:
    words = re.findall(r"\w+", text.lower())
    tokens = re.findall(r"\w+", " ".join([str(row.name), *map(str, row[columns])]).lower())
    return all(any(t.startswith(w) for t in tokens) for w in words)


def test_explorer_search_rings_matches_and_greys_the_rest(umap_frame):
    ex = explore.LatentExplorer(umap_frame, color="masterCategory")
    columns = ["productDisplayName", "articleType", "baseColour"]
    for text in ("black shoes", "WHITE", "men shirt"):
        found = ex.search(text)
        expected = [i for i, row in umap_frame.iterrows() if _words_match(text, row, columns)]
        assert list(found.index) == expected and expected, text
        assert ex.highlighted == expected and ex.search_box.value == text
        assert f"{len(expected)} found" in ex.status.value
        rings = ex.figure.data[-2]
        assert rings.name == f"found ({len(expected)})" and sorted(
            rings.customdata[:, 0]
        ) == sorted(expected)
        categories = ex.figure.data[:-2]
        assert all(t.selectedpoints is not None for t in categories)  # the rest are grey
        shown = [t.customdata[i][0] for t in categories for i in t.selectedpoints]
        assert sorted(shown) == sorted(expected)
    assert ex.search("zzzqqq").empty and ex.highlighted == []
    apparel = explore.search_items(umap_frame, "APPAREL", columns=["masterCategory"])
    assert list(apparel.index) == list(umap_frame.index[umap_frame["masterCategory"] == "Apparel"])
    ex.search_box.value = "black"  # typing in the box
    assert ex.highlighted and all(
        _words_match("black", umap_frame.loc[i], columns) for i in ex.highlighted
    )
    ex.search("")
    assert ex.highlighted == [] and all(t.selectedpoints is None for t in ex.figure.data)
    assert ex.status.value == ""


def test_explorer_selection_table_csv_and_callbacks(umap_frame, tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_NB_HOME", str(tmp_path / "home"))
    ex = explore.LatentExplorer(umap_frame, color="masterCategory")
    calls = []
    assert ex.on_select(calls.append) == calls.append  # returned: usable as a decorator
    with pytest.raises(RecsysError, match="nothing is selected"):
        ex.export_selection_csv(tmp_path / "none.csv")
    assert ex.export_button.disabled
    picked = list(umap_frame.index[[7, 2, 11]])
    ex.select([str(i) for i in picked])  # ids as text, as a browser would send them
    in_order = [i for i in umap_frame.index if i in picked]
    assert calls == [in_order] and ex.selected_ids == in_order
    table = ex.selected
    catalogue = [c for c in umap_frame.columns if c not in ("x", "y")]
    assert list(table.columns) == ["id", *catalogue] and list(table["id"]) == in_order
    path = ex.export_selection_csv(tmp_path / "sel.csv")
    back = pd.read_csv(path)
    assert list(back["id"]) == in_order
    assert list(back["productDisplayName"]) == list(table["productDisplayName"])
    ex.export_button.click()  # the button: the default exports folder
    default = tmp_path / "home" / "data" / "exports" / "selection.csv"
    assert len(pd.read_csv(default)) == 3 and str(default) in ex.status.value
    ex.select(picked)  # the same selection: no call
    assert len(calls) == 1
    # a lasso in the browser: plotly sends the points of every trace in one message
    ids_of = [t.customdata[:, 0] for t in ex.figure.data]
    message = {
        "event_type": "plotly_selected",
        "points": {
            "xs": [0.0] * 3,
            "ys": [0.0] * 3,
            "point_indexes": [0, 1, 0],
            "trace_indexes": [0, 0, 1],
        },
        "selector": {"type": "box", "selector_state": {"xrange": [0, 1], "yrange": [0, 1]}},
    }
    ex.figure._handler_js2py_pointsCallback({"new": message})
    lassoed = {ids_of[0][0], ids_of[0][1], ids_of[1][0]}
    assert len(calls) == 2 and set(calls[-1]) == lassoed == set(ex.selected_ids)
    assert "3 selected" in ex.grid_caption.value
    points = {"xs": [], "ys": [], "point_indexes": [], "trace_indexes": []}
    ex.figure._handler_js2py_pointsCallback(
        {"new": {"event_type": "plotly_deselect", "points": points}}
    )
    assert calls[-1] == [] and len(calls) == 3 and ex.export_button.disabled
    ex.on_select(calls.append, remove=True)
    ex.select(picked)
    assert len(calls) == 3


def test_explorer_highlight_for_other_widgets(umap_frame):
    ex = explore.LatentExplorer(umap_frame, color="articleType")
    calls = []
    ex.on_select(calls.append)
    query, recs = umap_frame.index[0], list(umap_frame.index[[4, 9, 12]])
    assert ex.highlight(recs + [-12345], query_id=query) == recs  # unknown ids left out
    star, rings = ex.figure.data[-1], ex.figure.data[-2]
    assert list(star.customdata[:, 0]) == [query] and star.marker.symbol == "star"
    assert sorted(rings.customdata[:, 0]) == sorted(recs) and rings.showlegend
    greyed_to = [t.customdata[i][0] for t in ex.figure.data[:-2] for i in t.selectedpoints]
    assert sorted(greyed_to) == sorted([query, *recs])
    assert calls == [] and ex.selected_ids == []  # highlighting is not selecting
    # a selection decides the grey; the rings stay on top
    ex.select(umap_frame.index[20:30])
    kept = [t.customdata[i][0] for t in ex.figure.data[:-2] for i in t.selectedpoints]
    assert sorted(kept) == sorted(umap_frame.index[20:30]) and len(ex.figure.data[-2].x) == 3
    ex.select([])
    ex.color_by("gender")  # the highlight survives a new colouring
    assert list(ex.figure.data[-1].customdata[:, 0]) == [query]
    assert ex.highlighted == recs
    ex.highlight()
    assert len(ex.figure.data[-1].x) == 0 and not ex.figure.data[-2].showlegend
    assert all(t.selectedpoints is None for t in ex.figure.data)
    with pytest.raises(RecsysError, match="cannot colour"):
        ex.color_by("nope")
    assert "highlighted" in repr(ex)


def test_image_grids(tiny_product_model, items, store):
    grid = explore.category_grid(items, "masterCategory", n_categories=3, per_category=4)
    assert (grid.rows, grid.cols) == (3, 4) and repr(grid).startswith("ImageGrid(3 rows x 4")
    assert grid._repr_jpeg_()[:2] == b"\xff\xd8"
    rec = explore.reconstruction_grid(
        {"a": tiny_product_model, "b": tiny_product_model}, items.images[:5]
    )
    assert (rec.rows, rec.cols) == (3, 5)
    rows = explore.recommendation_rows(store, store.ids[:2], k=4)
    assert (rows.rows, rows.cols) == (2, 5)
    interp = explore.interpolation_grid(tiny_product_model, items.images[0], items.images[1], 6)
    assert (interp.rows, interp.cols) == (1, 8)
    trav = explore.traversal_grid(
        tiny_product_model, items.images[0], dims=(0, 3), steps=5, reference=items.images[:50]
    )
    assert (trav.rows, trav.cols) == (2, 5)
    codes = tiny_product_model.encoder.predict(items.images[:50], verbose=0)
    widest = explore.varying_dims(tiny_product_model, items.images[:50], n=3)
    assert widest == sorted(range(codes.shape[1]), key=lambda d: -codes[:, d].std())[:3]
    default = explore.traversal_grid(
        tiny_product_model, items.images[0], reference=items.images[:50]
    )
    assert (default.rows, default.cols) == (3, 7)
    with pytest.raises(RecsysError, match="no images"):
        explore.image_grid([])


def test_interpolation_endpoints_decode_the_codes(tiny_product_model, items):
    a, b = items.images[0], items.images[1]
    codes = tiny_product_model.encoder.predict(np.stack([a, b]), verbose=0)
    decoded = tiny_product_model.decoder.predict(codes, verbose=0)
    grid = explore.interpolation_grid(tiny_product_model, a, b, steps=2, scale=1)
    h, w = a.shape[:2]
    pad = 4
    cell = np.asarray(grid.image)[pad : pad + h, 2 * pad + w : 2 * pad + 2 * w]
    np.testing.assert_allclose(cell / 255.0, decoded[0], atol=0.02)


def test_disagreements(tiny_product_model, items):
    table = explore.disagreements(tiny_product_model, items, k=4, n=3)
    assert list(table.columns) == ["id", "overlap", "model_ids", "other_ids"]
    assert len(table) == 3 and table["overlap"].is_monotonic_increasing
    assert all(
        len(m) == 4 and qid not in m for qid, m in zip(table["id"], table["model_ids"], strict=True)
    )
    grid = explore.disagreement_grid(table, items)
    assert (grid.rows, grid.cols) == (6, 5) and grid.title == "model vs colour hist"
    # against the pretrained CNN: its neighbours are the CNN's own top-k
    from recsys_nb.cnn import dataset_features
    from recsys_nb.recommend import top_k

    table = explore.disagreements(tiny_product_model, items, k=4, n=3, against="cnn")
    features = dataset_features(items)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    expected, _ = top_k(features, features, 4, exclude=np.arange(len(items)))
    row = {int(i): r for r, i in enumerate(items.ids)}
    for qid, theirs in zip(table["id"], table["other_ids"], strict=True):
        assert theirs == items.ids[expected[row[int(qid)]]].tolist()
    assert explore.disagreement_grid(table, items).title == "model vs CNN"
    shares = explore.disagreement_shares(table, items.meta)
    assert list(shares.index) == ["model", "CNN"]
    same = [
        items.meta.at[i, "baseColour"] == items.meta.at[q, "baseColour"]
        for q, ids in zip(table["id"], table["other_ids"], strict=True)
        for i in ids
    ]
    assert shares.at["CNN", "same baseColour"] == pytest.approx(np.mean(same))
    with pytest.raises(RecsysError, match="against='hog'"):
        explore.disagreements(tiny_product_model, items, against="hog")


def test_exports(tmp_path, umap_frame, store):
    path = explore.export_umap_html(umap_frame, tmp_path / "map.html")
    html = path.read_text()
    assert html.count("jpeg;base64,") >= len(umap_frame)
    assert "plotly_hover" in html and "<html>" in html
    assert len(html) > 1_000_000  # plotly.js is inside: works offline
    rec = explore.export_recommendations_html(store, store.ids[:2], tmp_path / "recs.html", k=3)
    text = rec.read_text()
    assert text.count("jpeg;base64,") == 2 * 4 and "score" in text
    png = explore.save_map_png(umap_frame, tmp_path / "map.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_notebook_model_trains_once_then_reuses(tmp_path, monkeypatch, small_catalog):
    monkeypatch.setenv("RECSYS_NB_HOME", str(tmp_path))
    root = tmp_path / "shared"
    root.mkdir()
    (root / "fashion-products").symlink_to(small_catalog)
    monkeypatch.setenv("RECSYS_NB_DATA", str(root))
    catalog = explore.notebook_catalog(quick=True, items=120)
    assert catalog == tmp_path / "data" / "quick-catalog-120"
    assert len((catalog / "styles.csv").read_text().splitlines()) == 121
    assert len(list((catalog / "images").iterdir())) == 120
    tiny = explore.QUICK_RECIPE.replace(epochs=1, filters=(4, 8))
    model = explore.notebook_model(quick=True, latent_dim=4, recipe=tiny)
    assert model.path == tmp_path / "models" / "quick-products-z4-bce"
    assert model.input_shape == (*explore.QUICK_SIZE, 3)
    assert model.meta["source"] == str(tmp_path / "data" / f"quick-catalog-{explore.QUICK_ITEMS}")
    stamp = json.loads((model.path / "meta.json").read_text())["model_id"]
    again = explore.notebook_model(quick=True, latent_dim=4, recipe=tiny)
    assert again.meta["model_id"] == stamp
    assert explore.notebook_catalog(quick=False) == root / "fashion-products"
