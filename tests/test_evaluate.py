"""The evaluation metrics, baselines and report format (recsys_nb.evaluate)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import recsys_nb
from recsys_nb.cli import main
from recsys_nb.embed import apply_latent_transform, embed, fit_latent_transform, l2_normalize
from recsys_nb.errors import RecsysError
from recsys_nb.evaluate import (
    PCA_DIM,
    PRODUCT_LABELS,
    baseline_features,
    colour_histogram,
    evaluate,
    grey,
    neighbour_metrics,
)

BASELINES = {"raw_rgb", "raw_grey", f"pca{PCA_DIM}", "colour_hist", "hog", "chance"}

# Five 2-d items; cosines chosen so that the order, ties included, is known by hand.
VECTORS = np.array([[1, 0], [0, 1], [1, 1], [1, 0], [-1, 0]], dtype=np.float32)
LABELS = np.array(["a", "b", "b", "a", "a"])
COLOURS = np.array(["red", "", "red", "blue", "red"])
# Neighbours, best first (ties by the lower index):
#   0: 3 (1.0), 2 (.71), 1 (0), 4 (-1)        1: 2 (.71), 0, 3, 4 (all 0)
#   2: 0, 1, 3 (all .71), 4 (-.71)            3: 0 (1.0), 2 (.71), 1 (0), 4 (-1)
#   4: 1 (0), 2 (-.71), 0, 3 (both -1)


def test_precision_hand_computed():
    r = neighbour_metrics(VECTORS, {"label": LABELS, "all": np.zeros(5)}, k=2)
    # hits in the top 2: 1/2, 1/2, 1/2 (ties: 0 and 1 come before 3), 1/2, 0
    assert r["precision"]["label"] == pytest.approx(0.4)
    assert r["precision"]["all"] == 1.0
    assert "same_colour" not in r


def test_mrr_hand_computed_with_ties():
    r = neighbour_metrics(VECTORS, {"label": LABELS}, k=2)
    # first same-label neighbour at ranks 1, 1, 2 (item 0 wins the 3-way tie), 1, 3
    assert r["mrr"] == pytest.approx((1 + 1 + 1 / 2 + 1 + 1 / 3) / 5)


def test_same_colour_leaves_out_empty_colours():
    r = neighbour_metrics(VECTORS, {"label": LABELS}, k=2, colour=COLOURS)
    # queries 0, 2, 3, 4 (item 1 has no colour): 1/2, 1/2 (neighbour 1 is not "red"), 0, 1/2
    assert r["same_colour"] == pytest.approx(1.5 / 4)
    none = neighbour_metrics(VECTORS, {"label": LABELS}, k=2, colour=np.array([""] * 5))
    assert none["same_colour"] is None
    json.dumps(none)  # no NaN in the report


def test_k_larger_than_the_catalogue_never_returns_the_query():
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    r = neighbour_metrics(vectors, {"label": np.array(["a", "a", "b"])}, k=10)
    # each item's neighbours are the two others: 1/2, 1/2, 0
    assert r["precision"]["label"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("levels", [None, 2, 1])
def test_ranking_and_mrr_match_a_full_stable_sort(levels):
    # Enough items that only the best k + CANDIDATES are sorted; rounded vectors tie often
    # (with levels=1, many rows tie at the k-th score beyond the candidates). Labels are
    # rare enough that some rows' first hit lies past the candidates.
    from recsys_nb.evaluate import _ranked

    dims = 2 if levels == 1 else 4  # 2-d, rounded to integers: a handful of directions
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((400, dims)).astype(np.float32)
    if levels:
        vectors = np.round(vectors * levels) / levels
    vectors = l2_normalize(vectors + (vectors == 0).all(axis=1, keepdims=True))
    labels = rng.integers(0, 60, len(vectors))
    unit = l2_normalize(vectors)  # what neighbour_metrics ranks (normalised again: ties move)
    scores = unit @ unit.T
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :-1]
    ranked, exact = _ranked(unit, 10)
    assert (exact >= 10).all()
    for i in range(len(vectors)):
        np.testing.assert_array_equal(ranked[i, : exact[i]], order[i, : exact[i]])
    hits = labels[order] == labels[:, None]
    first = np.argmax(hits, axis=1)
    mrr = np.mean(np.where(hits.any(axis=1), 1 / (first + 1), 0.0))
    assert (first >= exact).any() and (first < exact).any()  # both paths of the MRR are taken
    got = neighbour_metrics(vectors, {"label": labels}, k=10)
    assert got["mrr"] == pytest.approx(mrr)
    assert got["precision"]["label"] == pytest.approx(np.mean(hits[:, :10]))


def test_no_hit_counts_zero_in_mrr_and_bad_input_is_refused():
    r = neighbour_metrics(VECTORS, {"label": np.array(list("abcde"))}, k=3)
    assert r["mrr"] == 0.0 and r["precision"]["label"] == 0.0
    with pytest.raises(RecsysError, match="at least 2 items"):
        neighbour_metrics(VECTORS[:1], {"label": LABELS[:1]})
    with pytest.raises(RecsysError, match="k must be"):
        neighbour_metrics(VECTORS, {"label": LABELS}, k=0)


# --- brute-force references ----------------------------------------------------------


def brute_metrics(vectors, labels, k, colour=None):
    """Sort every other item by (-cosine, index), one query at a time.

    The cosines are the same float32 numbers (histograms tie often, and float64 would
    order near-ties differently); the ranking, cut-off and counting are done by hand.
    """
    v = l2_normalize(vectors)
    cosine = v @ v.T
    n = len(v)
    precision = {name: [] for name in labels}
    same, reciprocal = [], []
    first = next(iter(labels.values()))
    for i in range(n):
        scores = [(-float(cosine[i, j]), j) for j in range(n) if j != i]
        order = [j for _, j in sorted(scores)]
        for name, values in labels.items():
            precision[name].append(np.mean([values[j] == values[i] for j in order[:k]]))
        if colour is not None and colour[i] != "":
            same.append(np.mean([colour[j] == colour[i] for j in order[:k]]))
        hits = [rank for rank, j in enumerate(order, 1) if first[j] == first[i]]
        reciprocal.append(1 / hits[0] if hits else 0.0)
    out = {"precision": {name: float(np.mean(p)) for name, p in precision.items()}}
    if colour is not None:
        out["same_colour"] = float(np.mean(same))
    out["mrr"] = float(np.mean(reciprocal))
    return out


def brute_colour_histogram(image, bins=8):
    hist = np.zeros(bins**3)
    for pixel in image.reshape(-1, 3):
        if pixel.min() < 0.94:
            r, g, b = (min(int(c * bins), bins - 1) for c in pixel)
            hist[(r * bins + g) * bins + b] += 1
    return np.sqrt(hist / max(hist.sum(), 1))


def brute_hog(image, cell, bins=9, floor=0.1):
    """Histograms of oriented gradients, pixel by pixel (see model.gradient_histograms)."""
    g = 0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2]
    cy, cx = g.shape[0] // cell, g.shape[1] // cell
    cells = np.zeros((cy, cx, bins))
    for y in range(1, min(g.shape[0] - 1, cy * cell)):
        for x in range(1, min(g.shape[1] - 1, cx * cell)):
            gx, gy = g[y, x + 1] - g[y, x - 1], g[y + 1, x] - g[y - 1, x]
            angle = np.arctan2(gy, gx)  # the orientation, doubled: direction does not count
            for b in range(bins):
                similarity = np.cos(2 * angle - 2 * np.pi * b / bins) * (gx * gx + gy * gy)
                similarity /= gx * gx + gy * gy + 1e-4
                strength = np.sqrt(gx * gx + gy * gy + 1e-6)
                cells[y // cell, x // cell, b] += strength * max(similarity, 0.0) ** 4
    blocks = []
    for i in range(cy - 1):
        for j in range(cx - 1):
            four = [cells[i, j], cells[i, j + 1], cells[i + 1, j], cells[i + 1, j + 1]]
            block = np.concatenate(four)
            blocks.append(block / np.sqrt(np.sum(block**2) + floor))
    return np.concatenate(blocks)


def brute_pca(images, fit, dim):
    x = fit.reshape(len(fit), -1).astype(np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return (images.reshape(len(images), -1) - mean) @ vt[:dim].T


@pytest.fixture
def small_set(rng):
    """Blocky random RGB images on white, with labels shared by several items."""
    n = 40
    images = np.ones((n, 8, 6, 3), dtype=np.float32)
    images[:, 2:6, 1:5] = rng.random((n, 4, 4, 3), dtype=np.float32)
    labels = {
        "articleType": rng.choice(["shirt", "shoe", "bag", "watch"], n),
        "masterCategory": rng.choice(["apparel", "footwear"], n),
    }
    colour = rng.choice(["red", "blue", "black", ""], n)
    fit = np.ones((60, 8, 6, 3), dtype=np.float32)
    fit[:, 1:7, 1:5] = rng.random((60, 6, 4, 3), dtype=np.float32)
    return images, fit, labels, colour


def test_baseline_features_equal_brute_force(small_set):
    images, fit, _, _ = small_set
    features = baseline_features(images, fit)
    assert set(features) == BASELINES
    np.testing.assert_allclose(features["raw_rgb"], images.reshape(len(images), -1))
    luminance = 0.299 * images[..., 0] + 0.587 * images[..., 1] + 0.114 * images[..., 2]
    np.testing.assert_allclose(features["raw_grey"], luminance.reshape(len(images), -1), rtol=1e-5)
    hist = np.stack([brute_colour_histogram(im) for im in images])
    np.testing.assert_allclose(features["colour_hist"], hist, atol=1e-12)
    np.testing.assert_allclose(colour_histogram(images), hist, atol=1e-12)
    # 8x6 images: 3x3-pixel cells, so 2x2 cells and one block
    hog = np.stack([brute_hog(im.astype(np.float64), cell=3) for im in images])
    np.testing.assert_allclose(features["hog"], hog, atol=1e-5)
    # PCA components are defined up to sign: compare absolute coordinates
    pca = brute_pca(images, fit, PCA_DIM)
    np.testing.assert_allclose(np.abs(features["pca32"]), np.abs(pca), atol=1e-4)
    assert features["chance"].shape == (len(images), PCA_DIM)


def test_baseline_metrics_equal_brute_force(small_set):
    images, fit, labels, colour = small_set
    features = baseline_features(images, fit)
    features["brute_pca"] = brute_pca(images, fit, PCA_DIM)
    for name, vectors in features.items():
        got = neighbour_metrics(vectors, labels, k=5, colour=colour)
        want = brute_metrics(vectors, labels, 5, colour)
        assert got["precision"] == pytest.approx(want["precision"]), name
        assert got["same_colour"] == pytest.approx(want["same_colour"]), name
        assert got["mrr"] == pytest.approx(want["mrr"]), name


def test_grey_images_get_no_colour_baselines(small_set):
    images, fit, _, _ = small_set
    features = baseline_features(grey(images), grey(fit))
    assert set(features) == {"raw_grey", f"pca{PCA_DIM}", "hog", "chance"}


# --- the latent transform (centring / whitening) ----------------------------------------


@pytest.mark.parametrize("whiten", [0.0, 0.5, 1.0])
def test_latent_transform_centres_and_whitens(rng, whiten):
    codes = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6)) + 3.0
    spec = fit_latent_transform(codes, whiten)
    out = (codes - np.array(spec["mean"])) @ np.array(spec["matrix"])
    assert np.abs(out.mean(axis=0)).max() < 1e-9
    eigenvalues = np.linalg.eigvalsh(np.cov(out, rowvar=False))
    original = np.linalg.eigvalsh(np.cov(codes, rowvar=False))
    np.testing.assert_allclose(eigenvalues, original ** (1 - whiten), rtol=1e-6)
    json.dumps(spec)


def test_embed_applies_the_models_latent_transform(tiny_product_model, small_catalog, rng):
    images = recsys_nb.load_catalog(small_catalog, size=tiny_product_model.input_shape[:2]).images
    plain = embed(tiny_product_model, images[:20])
    codes = tiny_product_model.encoder.predict(images[:20], verbose=0)
    np.testing.assert_allclose(plain, l2_normalize(codes), atol=1e-6)
    spec = fit_latent_transform(rng.standard_normal((200, tiny_product_model.latent_dim)))
    tiny_product_model.meta["latent_transform"] = spec
    try:
        whitened = embed(tiny_product_model, images[:20])
        want = l2_normalize(apply_latent_transform(tiny_product_model, codes))
        np.testing.assert_allclose(whitened, want, atol=1e-5)
        assert not np.allclose(whitened, plain, atol=1e-3)
    finally:
        del tiny_product_model.meta["latent_transform"]


# --- the report --------------------------------------------------------------------------


def check_rows(report, labels, colour):
    assert set(report) >= {"k", "n_items", "results"} and report["k"] == 10
    for name, row in report["results"].items():
        assert set(row["precision"]) == set(labels), name
        assert all(0.0 <= p <= 1.0 for p in row["precision"].values())
        assert 0.0 <= row["mrr"] <= 1.0
        assert ("same_colour" in row) == colour
        if colour:
            assert 0.0 <= row["same_colour"] <= 1.0


def test_evaluate_json_products(capsys, tiny_product_model, small_catalog):
    code = main(
        ["evaluate", "--model", str(tiny_product_model.path), "--catalog", str(small_catalog)]
        + ["--k", "10", "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    cnn_rows = {"cnn", f"cnn_pca{tiny_product_model.latent_dim}"}  # recsys_nb.cnn
    assert set(report["results"]) == {"model"} | BASELINES | cnn_rows
    check_rows(report, PRODUCT_LABELS, colour=True)
    # only the items the model never trained on: its validation split by id
    assert report["split"] == "val" and report["n_items"] == tiny_product_model.meta["n_val"]
    again = evaluate(tiny_product_model, small_catalog, split="all", baselines=False)
    assert set(again["results"]) == {"model"} and again["n_items"] == 300


def test_evaluate_fashion_mnist_format(tiny_product_model, models_dir):
    model = recsys_nb.train(
        "fashion-mnist", str(models_dir / "tiny-fm"), epochs=1, quick=True, verbose=0
    )
    report = evaluate(model, k=10, limit=300)
    assert report["n_items"] == 300 and report["split"] == "test"
    rows = {"model", "raw_grey", f"pca{PCA_DIM}", "hog", "chance", "cnn"}  # cnn: recsys_nb.cnn
    assert set(report["results"]) == rows | {f"cnn_pca{model.latent_dim}"}
    check_rows(report, ["label"], colour=False)
    json.dumps(report)
    # choosing a recipe: the validation part of the training set, never the test set
    val = evaluate(model, k=10, split="val", baselines=False)
    train_part, held_out = recsys_nb.load_fashion_mnist("train").split(0.1, 0)
    assert val["split"] == "val" and val["n_items"] == len(held_out)
    assert 5000 < len(held_out) < 7000 and not set(held_out.ids) & set(train_part.ids)
    expected = neighbour_metrics(
        embed(model, held_out.images), {"label": held_out.meta["label"].to_numpy()}, 10
    )
    assert val["results"]["model"] == expected


# --- the training options behind the recipe ------------------------------------------------


def test_augment_images_flips_and_shifts_with_white(rng):
    from recsys_nb.augment import augment_images

    images = np.zeros((64, 16, 12, 1), dtype=np.float32)
    images[:, :, :6] = 0.5  # left half grey, right half black
    flipped = augment_images(images, ["flip"], np.random.default_rng(0))
    mirrored = np.all(flipped == images[:, :, ::-1], axis=(1, 2, 3))
    assert 0 < mirrored.sum() < 64 and np.all(mirrored | np.all(flipped == images, axis=(1, 2, 3)))
    shifted = augment_images(images, ["shift"], np.random.default_rng(0))
    assert shifted.shape == images.shape and set(np.unique(shifted)) <= {0.0, 0.5, 1.0}
    assert np.any(shifted == 1.0)  # white comes in from the border
    assert np.array_equal(images, np.where(images == 0.5, 0.5, 0.0))  # input untouched
    with pytest.raises(RecsysError, match="unknown augmentation"):
        augment_images(images, ["rotate"], np.random.default_rng(0))


def test_tone_keeps_black_and_white_and_is_undone_in_the_target(rng):
    from recsys_nb.augment import augment_images
    from recsys_nb.train import _Augmented

    images = np.full((32, 8, 6, 3), 0.5, dtype=np.float32)
    images[:, 0], images[:, 1] = 1.0, 0.0  # white background row, black row
    toned = augment_images(images, ["tone"], np.random.default_rng(0))
    assert np.all(toned[:, 0] == 1.0) and np.all(toned[:, 1] == 0.0)
    mid = toned[:, 4, 3]  # per image and channel: 0.5 ** gamma, gamma in [1/2.5, 2.5]
    assert mid.min() >= 0.5**2.5 - 1e-6 and mid.max() <= 0.5 ** (1 / 2.5) + 1e-6
    assert mid.std() > 0.05 and np.any(np.ptp(mid, axis=1) > 0.01)  # channels differ: hue

    batches = _Augmented(images, batch_size=8, kinds=("flip", "tone"), seed=0)
    x, target = batches[0]
    assert x.shape == target.shape == (8, 8, 6, 3)
    assert np.all(target[:, 2:] == 0.5)  # the target is flipped but not toned
    assert not np.allclose(x[:, 2:], 0.5)


def test_mask_whites_out_about_half_in_blocks():
    from recsys_nb.augment import augment_images

    images = np.zeros((200, 64, 48, 1), dtype=np.float32)
    masked = augment_images(images, ["mask"], np.random.default_rng(0))
    assert set(np.unique(masked)) == {0.0, 1.0} and 0.45 < masked.mean() < 0.55
    blocks = masked[:, :, :, 0].reshape(200, 8, 8, 8, 6)  # 8 x 8 blocks of 8 x 6 pixels
    assert np.all(blocks.min(axis=(2, 4)) == blocks.max(axis=(2, 4)))  # whole blocks only
    assert np.all(images == 0)  # the input array is untouched


def test_train_with_augment_and_whiten(small_catalog, models_dir):
    data = recsys_nb.load_catalog(small_catalog, size=(32, 24), channels=1)
    model = recsys_nb.train(
        data=data,
        name=str(models_dir / "tiny-aug-whiten"),
        epochs=1,
        batch_size=64,
        filters=(8, 16),
        latent_dim=8,
        augment="flip,shift",
        whiten=1.0,
        verbose=0,
    )
    spec = model.meta["latent_transform"]
    assert model.meta["augment"] == ["flip", "shift"] and spec["whiten"] == 1.0
    train_part, _ = data.split()
    vectors = embed(model, train_part.images)
    codes = model.encoder.predict(train_part.images, verbose=0)
    whitened = (codes - np.array(spec["mean"])) @ np.array(spec["matrix"])
    np.testing.assert_allclose(vectors, l2_normalize(whitened), atol=1e-4)
    np.testing.assert_allclose(np.cov(whitened, rowvar=False), np.eye(8), atol=1e-3)
    with pytest.raises(RecsysError, match="whiten"):
        recsys_nb.train(data=data, name=str(models_dir / "bad"), epochs=1, whiten=2.0)

    # fitted again on the saved model: the same training codes give the same transform
    again = recsys_nb.refit_latent_transform(model.path, 1.0).meta["latent_transform"]
    np.testing.assert_allclose(again["matrix"], spec["matrix"], atol=1e-4)
    with pytest.raises(RecsysError, match="whiten"):
        recsys_nb.refit_latent_transform(model.path, 2.0)
    (model.path / "embeddings.npz").write_bytes(b"stale")  # as embed_catalog would leave
    centred = recsys_nb.refit_latent_transform(model.path, 0.0)
    assert recsys_nb.load_model(model.path).meta["latent_transform"]["whiten"] == 0.0
    assert not (model.path / "embeddings.npz").exists()
    np.testing.assert_allclose(
        embed(centred, train_part.images), l2_normalize(codes - codes.mean(axis=0)), atol=1e-4
    )
    assert "latent_transform" not in recsys_nb.refit_latent_transform(model.path, None).meta


def test_paired_views_hold_each_item_twice():
    from recsys_nb.train import _Augmented

    images = np.random.default_rng(0).random((20, 8, 6, 1), dtype=np.float32)
    batches = _Augmented(images, batch_size=8, kinds=("tone",), seed=0, views=2)
    assert len(batches) == 5  # 4 items (8 rows) per batch
    x, target = batches[0]
    assert x.shape == target.shape == (8, 8, 6, 1)
    np.testing.assert_array_equal(target[:4], target[4:])  # the same items, same order
    assert not np.allclose(x[:4], x[4:])  # two different views of them
    seen = np.concatenate([batches[i][1][:4] for i in range(len(batches))])
    assert sorted(map(bytes, seen)) == sorted(map(bytes, images))  # each item once an epoch


def test_crop_zooms_into_a_window_of_70_to_100_percent(monkeypatch):
    from recsys_nb import augment
    from recsys_nb.augment import augment_images

    ramp = np.linspace(0, 1, 48, dtype=np.float32)  # brightness = x / (width - 1)
    images = np.broadcast_to(ramp[None, None, :, None], (50, 64, 48, 1)).copy()
    cropped = augment_images(images, ["crop"], np.random.default_rng(0))
    assert cropped.shape == images.shape and np.array_equal(images[0, 0, :, 0], ramp)
    rows = cropped[:, 0, :, 0]
    span = rows[:, -1] - rows[:, 0]  # the window's share of the width
    assert np.all(span >= 0.7 - 1e-5) and np.all(span <= 1 + 1e-5) and span.std() > 0.02
    assert rows.min() >= 0 and rows.max() <= 1
    np.testing.assert_allclose(np.diff(rows, 2), 0, atol=1e-5)  # still a straight ramp
    monkeypatch.setattr(augment, "CROP_SCALE", 1.0)  # a full-size window is the image itself
    np.testing.assert_allclose(augment_images(images, ["crop"], np.random.default_rng(1)), images)
