"""The explore stage: projections (UMAP cached on disk), figures, image grids, HTML export."""

from __future__ import annotations

import json

import numpy as np
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
    ex.color_by("baseColour")
    assert ex.color_menu.value == "baseColour" and ex.selection().empty
    ex.show_product(umap_frame.index[1])
    assert ex.preview.value[:2] == b"\xff\xd8"  # a JPEG
    assert str(umap_frame.index[1]) in ex.caption.value
    ex.select([])
    assert ex.selection().empty and ex.grid.value == b""


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
    assert list(table.columns) == ["id", "overlap", "model_ids", "colour_ids"]
    assert len(table) == 3 and table["overlap"].is_monotonic_increasing
    assert all(
        len(m) == 4 and qid not in m for qid, m in zip(table["id"], table["model_ids"], strict=True)
    )
    grid = explore.disagreement_grid(table, items)
    assert (grid.rows, grid.cols) == (6, 5)


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
