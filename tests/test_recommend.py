"""Stages 4-5: embeddings and exact cosine top-k."""

import numpy as np
import pytest
from PIL import Image

import recsys_nb
from recsys_nb.embed import Embeddings, l2_normalize
from recsys_nb.recommend import MemoryStore, top_k


def brute_force(queries, items, k, exclude=None, mask=None):
    scores = queries @ items.T
    result = []
    for q, row in enumerate(scores):
        order = sorted(
            (
                j
                for j in range(len(items))
                if (exclude is None or j != exclude[q]) and (mask is None or mask[j])
            ),
            key=lambda j: (-row[j], j),
        )
        result.append(order[:k])
    return np.array(result)


@pytest.mark.parametrize("chunk_bytes", [64 * 2**20, 4 * 300 * 7])
def test_top_k_matches_brute_force(rng, chunk_bytes):
    items = l2_normalize(rng.standard_normal((300, 12)))
    queries = l2_normalize(rng.standard_normal((40, 12)))
    idx, scores = top_k(queries, items, 10, chunk_bytes=chunk_bytes)
    np.testing.assert_array_equal(idx, brute_force(queries, items, 10))
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ items.T, idx, 1), rtol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_top_k_excludes_the_query_and_respects_the_mask(rng):
    items = l2_normalize(rng.standard_normal((200, 8)))
    mask = rng.random(200) < 0.5
    idx, _ = top_k(items[:30], items, 5, exclude=np.arange(30), mask=mask)
    np.testing.assert_array_equal(idx, brute_force(items[:30], items, 5, np.arange(30), mask))
    assert not np.any(idx == np.arange(30)[:, None])


def test_top_k_k_larger_than_catalogue(rng):
    items = l2_normalize(rng.standard_normal((4, 3)))
    idx, scores = top_k(items[0], items, 10)
    assert idx.shape == (1, 4)


def test_top_k_memory_stays_bounded_for_a_million_items(rng):
    import tracemalloc

    items = l2_normalize(rng.standard_normal((1_000_000, 32), dtype=np.float32))  # 128 MB
    queries = items[:64]
    tracemalloc.start()
    idx, _ = top_k(queries, items, 10, exclude=np.arange(64))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 512 * 2**20  # working memory on top of the items themselves
    exact = np.argsort(-(queries[:3] @ items.T), axis=1, kind="stable")[:, 1:11]
    np.testing.assert_array_equal(idx[:3], exact)


@pytest.fixture(scope="module")
def store(tiny_product_model, small_catalog):
    return MemoryStore.from_model(tiny_product_model, small_catalog)


def test_store_recommends_with_metadata_and_excludes_query(store):
    table = store.recommend(21379, k=10)
    assert list(table["rank"]) == list(range(1, 11))
    assert 21379 not in set(table["id"])
    assert {"score", "articleType", "baseColour", "productDisplayName"} <= set(table.columns)
    assert table["score"].is_monotonic_decreasing


def test_exact_duplicate_of_a_catalogue_image_ranks_that_item_first(store, small_catalog):
    for item in store.ids[[3, 50, 222]]:
        table = store.recommend(image=small_catalog / "images" / f"{item}.jpg", k=3)
        assert table["id"].iloc[0] == item
        assert table["score"].iloc[0] == pytest.approx(1.0, abs=1e-5)


def test_filters_keep_only_matching_items(store):
    table = store.recommend(21379, k=20, filters={"masterCategory": "Footwear"})
    assert len(table) > 0 and set(table["masterCategory"]) == {"Footwear"}
    with pytest.raises(recsys_nb.RecsysError, match="cannot filter on 'colour'"):
        store.recommend(21379, filters={"colour": "Red"})


def test_unknown_id_and_bad_queries(store):
    with pytest.raises(recsys_nb.RecsysError, match="unknown id 999999999"):
        store.recommend(999999999)
    with pytest.raises(recsys_nb.RecsysError, match="latent size is 16"):
        store.recommend(vector=np.ones(5))
    with pytest.raises(recsys_nb.RecsysError, match="finite"):
        store.recommend(vector=np.full(16, np.nan))


def test_image_that_does_not_fit_the_model(store, tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (3, 4), "red").save(tiny)
    with pytest.raises(recsys_nb.RecsysError, match="does not fit the model"):
        store.recommend(image=tiny)
    with pytest.raises(recsys_nb.RecsysError, match="does not fit the model"):
        recsys_nb.embed(store.model, np.zeros((2, 28, 28, 1), dtype=np.float32))


def test_embeddings_are_unit_float32_and_cached(store, tiny_product_model):
    assert store.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(store.vectors, axis=1), 1.0, rtol=1e-5)
    cached = Embeddings.load(tiny_product_model.path / "embeddings.npz")
    np.testing.assert_allclose(cached.vectors, store.vectors, rtol=1e-6, atol=1e-7)
    assert cached.model_id == tiny_product_model.meta["model_id"]
