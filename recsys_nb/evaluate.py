"""Stage 7, evaluate: does the latent space match by category rather than by colour?

Within a set of items, every item queries all the others (itself excluded) with
cosine top-k. Reported per feature space (the model and simple baselines computed
the same way in the same run):

- ``precision``: share of the k neighbours with the query's label, per label column;
- ``same_colour``: share of the k neighbours with the query's ``baseColour`` (queries
  without a colour left out): the "matches by colour" failure;
- ``mrr``: mean reciprocal rank of the first neighbour with the query's first label.

Beside the simple baselines, a pretrained CNN (:mod:`recsys_nb.cnn`, EfficientNet-Lite0
on ImageNet): ``cnn``, its pooled 1280-d features of the items' image files (RGB), and
``cnn_pca<latent>``, those reduced by PCA to the model's latent size, fitted on (up to
2,000 of) the training images' features: a strong off-the-shelf embedding, and the
same at the model's size. Features are cached per item (``data/cache``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cnn import INPUT_SIZE, PretrainedCNN, dataset_features
from .data import LUMINANCE, Dataset, is_validation, load_catalog, load_fashion_mnist
from .embed import embed, l2_normalize
from .errors import RecsysError
from .model import load_model, split_settings
from .recommend import CHUNK_BYTES

PRODUCT_LABELS = ("articleType", "subCategory", "masterCategory")
COLOUR = "baseColour"
PCA_DIM = 32
HIST_BINS = 8
CANDIDATES = 32  # neighbours partitioned out per query beyond k, then sorted
# training images the CNN features' PCA is fitted on, at most: 2,000 give the same
# cnn_pca32 P@10 as 5,000 (Fashion-MNIST 0.792, products' articleType 0.450 / 0.449) and
# save the CNN 3,000 images (about 20 s) per evaluation
CNN_FIT_ITEMS = 2000


def neighbour_metrics(
    vectors: np.ndarray, labels: dict[str, np.ndarray], k: int = 10, colour=None
) -> dict:
    """Precision@k per label, same-colour@k and MRR of the cosine neighbours of each item.

    Every item queries all the others (never itself); neighbours are ranked by cosine,
    ties by the lower index. With fewer than
    ``k`` other items, all of them are the neighbours. ``same_colour`` leaves out the
    queries whose colour is empty (a neighbour with an empty colour is not the same
    colour); it is ``None`` when no query has a colour. ``mrr`` uses the first label.
    """
    vectors = l2_normalize(vectors)
    n = len(vectors)
    if n < 2:
        raise RecsysError(f"need at least 2 items to evaluate, got {n}")
    if k < 1:
        raise RecsysError(f"k must be at least 1, got {k}")
    ranked, exact = _ranked(vectors, min(k, n - 1))
    idx = ranked[:, : min(k, n - 1)]
    labels = {name: np.asarray(values) for name, values in labels.items()}
    out = {
        "precision": {
            name: float(np.mean(values[idx] == values[:, None])) for name, values in labels.items()
        }
    }
    if colour is not None:
        colour = np.asarray(colour)
        known = colour != ""
        out["same_colour"] = (
            float(np.mean(colour[idx[known]] == colour[known, None])) if known.any() else None
        )
    first = next(iter(labels.values()))
    out["mrr"] = _first_hit_mrr(vectors, first, ranked, exact)
    return out


def _ranked(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's best other items in order (cosine, then the lower index), and how many
    of them are certain: ``(ranked, exact)``, ``ranked`` with ``min(n - 1, k + CANDIDATES)``
    columns, of which the first ``exact[i] >= k`` of row ``i`` are the exact order.

    The exact order of a stable sort rather than :func:`~recsys_nb.recommend.top_k`, whose
    partition may pick any of the items tied at the k-th score (common with histograms).
    Each row's best ``k + CANDIDATES`` are partitioned out and only those sorted: its items
    scoring above the worst of them are in their exact places (no other item scores that
    high). A row whose k-th score ties with that worst one is sorted whole.
    """
    n = len(vectors)
    m = min(n - 1, k + CANDIDATES)
    out = np.empty((n, m), dtype=np.int64)
    exact = np.full(n, m)
    step = max(1, CHUNK_BYTES // (8 * n))
    for start in range(0, n, step):
        rows = np.arange(start, min(start + step, n))
        scores = vectors[rows] @ vectors.T
        scores[np.arange(len(rows)), rows] = -np.inf
        if m == n - 1:
            out[rows] = np.argsort(-scores, axis=1, kind="stable")[:, :m]
            continue
        best = np.argpartition(-scores, m - 1, axis=1)[:, :m]
        best_scores = np.take_along_axis(scores, best, axis=1)
        order = np.lexsort((best, -best_scores), axis=1)
        out[rows] = np.take_along_axis(best, order, axis=1)
        sorted_scores = np.take_along_axis(best_scores, order, axis=1)
        exact[rows] = (sorted_scores > sorted_scores[:, -1:]).sum(axis=1)
        tied = np.flatnonzero(exact[rows] < k)
        if len(tied):  # the k-th score continues past the candidates: sort those rows whole
            out[rows[tied]] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :m]
            exact[rows[tied]] = m
    return out, exact


def _first_hit_mrr(
    vectors: np.ndarray, labels: np.ndarray, ranked: np.ndarray, exact: np.ndarray
) -> float:
    """Mean of 1 / rank of the first other item with the same label (0 if there is none).

    Ranks as :func:`_ranked`, whose certain part gives most rows' first hit; the other
    rows (no hit among it) are ranked against every item.
    """
    hits = labels[ranked] == labels[:, None]
    position = np.argmax(hits, axis=1)
    found = hits[np.arange(len(hits)), position] & (position < exact)
    reciprocal = np.where(found, 1.0 / (position + 1), 0.0)
    rest = np.flatnonzero(~found)
    n = len(vectors)
    step = max(1, CHUNK_BYTES // (4 * n))
    for start in range(0, len(rest), step):
        rows = rest[start : start + step]
        local = np.arange(len(rows))
        scores = vectors[rows] @ vectors.T
        scores[local, rows] = -np.inf
        same = labels[None, :] == labels[rows, None]
        same[local, rows] = False
        best = np.where(same, scores, -np.inf).max(axis=1)
        # the first hit: the lowest index among the same-label items scoring ``best``
        first = np.argmax(same & (scores == best[:, None]), axis=1)
        ahead = (scores > best[:, None]) | (
            (scores == best[:, None]) & (np.arange(n)[None, :] < first[:, None])
        )
        ahead[local, rows] = False
        rank = 1 + ahead.sum(axis=1)
        reciprocal[rows] = np.where(same.any(axis=1), 1.0 / rank, 0.0)
    return float(reciprocal.mean())


# --- baselines: simple feature spaces, evaluated exactly like the model ----------


def grey(images: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R BT.601) of NHWC images; grey images pass through."""
    if images.shape[-1] == 1:
        return images
    return images @ np.array(LUMINANCE, dtype=np.float32)[:, None]


def colour_histogram(images: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """Joint RGB histogram of the non-background (not near-white) pixels, square-rooted."""
    n = len(images)
    q = np.minimum((images * bins).astype(np.int64), bins - 1)
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    foreground = images.min(axis=-1) < 0.94
    rows = np.broadcast_to(np.arange(n)[:, None, None], codes.shape)
    hist = np.zeros((n, bins**3))
    np.add.at(hist, (rows[foreground], codes[foreground]), 1.0)
    return np.sqrt(hist / np.maximum(hist.sum(axis=1, keepdims=True), 1.0))


def oriented_gradients(images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Flattened histograms of oriented gradients (HOG): a hand-made shape descriptor.

    The same :func:`recsys_nb.model.gradient_histograms` as ``train(hog=...)``'s loss:
    4x4-pixel cells, smaller in images under 8 pixels high or wide (2x2 cells at least).
    """
    from .model import gradient_histograms

    cell = max(1, min(4, images.shape[1] // 2, images.shape[2] // 2))
    parts = [
        np.asarray(gradient_histograms(images[i : i + batch_size], cell), dtype=np.float32)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts).reshape(len(images), -1)


def baseline_features(images: np.ndarray, fit_images: np.ndarray, seed: int = 0) -> dict:
    """Feature vectors of the baselines for ``images``; PCA is fitted on ``fit_images``."""
    from sklearn.decomposition import PCA

    flat = images.reshape(len(images), -1)
    features = {}
    if images.shape[-1] == 3:
        features["raw_rgb"] = flat
    features["raw_grey"] = grey(images).reshape(len(images), -1)
    pca_input = fit_images.reshape(len(fit_images), -1)
    pca = PCA(min(PCA_DIM, *pca_input.shape), random_state=seed).fit(pca_input)
    features[f"pca{PCA_DIM}"] = pca.transform(flat)
    if images.shape[-1] == 3:
        features["colour_hist"] = colour_histogram(images)
    features["hog"] = oriented_gradients(images)
    features["chance"] = np.random.default_rng(seed).standard_normal((len(images), PCA_DIM))
    return features


def cnn_features(
    items: Dataset, fit_items: Dataset, dim: int, seed: int = 0, size: int = INPUT_SIZE
) -> dict:
    """The CNN rows: pooled features of ``items`` (``"cnn"``) and their PCA to ``dim``
    (``"cnn_pca<dim>"``) fitted on the features of ``fit_items`` (cached, RGB)."""
    from sklearn.decomposition import PCA

    pooled = dataset_features(items, size)
    fit = dataset_features(fit_items, size)
    pca = PCA(min(dim, *fit.shape), random_state=seed).fit(fit)
    return {"cnn": pooled, f"cnn_pca{dim}": pca.transform(pooled)}


# --- the two protocols ---------------------------------------------------------


def evaluate(
    model,
    catalog=None,
    *,
    dataset: str | None = None,
    k: int = 10,
    split: str = "auto",
    baselines: bool = True,
    limit: int | None = None,
    cnn: bool = True,
) -> dict:
    """Evaluate a model, and the baselines, by neighbour precision.

    ``dataset="fashion-mnist"`` uses the Fashion-MNIST test set and its class label, or
    with ``split="val"`` the validation part of its training set (by id, as in
    training): the images to choose a recipe on, so that the test set is only reported.
    Otherwise ``catalog`` is a catalogue folder (default: the model's own). With
    ``split="auto"`` only items the model never trained on are used: the validation
    split when ``catalog`` is the model's training catalogue, every item otherwise;
    ``"val"`` and ``"all"`` force one or the other.

    With ``baselines``, ``cnn=True`` adds the pretrained CNN's rows (see the module doc;
    with ``limit``, its PCA is fitted on at most ``limit`` training images). ``model`` may
    be ``"cnn"`` (:func:`recsys_nb.cnn.load_cnn`): its rows then use PCA to 32.

    Returns ``{"k", "n_items", "split", "results": {"model": {...}, "<baseline>": {...}}}``.
    """
    model = load_model(model)
    meta = model.meta
    is_cnn = isinstance(model, PretrainedCNN)
    if split not in ("auto", "val", "all"):
        raise RecsysError(f"split must be 'auto', 'val' or 'all', got {split!r}")
    if dataset == "fashion-mnist" or (dataset is None and meta.get("dataset") == "fashion-mnist"):
        if split == "val":
            train_part, items = load_fashion_mnist("train").split(*split_settings(meta))
            fit = lambda: train_part  # noqa: E731
        else:  # the training set is read only if a baseline needs fitting on it
            items = load_fashion_mnist("test")
            fit = lambda: load_fashion_mnist("train")  # noqa: E731
        labels = {"label": items.meta["label"].to_numpy()}
        colour, used = None, "val" if split == "val" else "test"
    else:
        if dataset not in (None, "products"):
            raise RecsysError(f"unknown dataset {dataset!r}: use 'fashion-mnist' or --catalog")
        height, width = (model.items_shape if is_cnn else model.input_shape)[:2]
        folder = Path(catalog) if catalog else Path(meta.get("source", ""))
        items = load_catalog(
            folder if catalog or meta.get("source") else None, size=(height, width)
        )
        own = Path(items.source).resolve() == Path(meta.get("source", "/nonexistent")).resolve()
        used = "val" if split == "val" or (split == "auto" and own) else "all"
        everything = items
        fit = lambda: _training_part(meta, everything, (height, width), own)  # noqa: E731
        if used == "val":
            items = items.subset(is_validation(items.ids, *split_settings(meta)))
        missing = [c for c in (*PRODUCT_LABELS, COLOUR) if c not in items.meta.columns]
        if missing:
            raise RecsysError(
                f"catalogue {items.source} lacks the label column(s) {', '.join(missing)}"
            )
        labels = {c: items.meta[c].astype(str).to_numpy() for c in PRODUCT_LABELS}
        colour = items.meta[COLOUR].astype(str).to_numpy()
    if limit is not None:
        items = items.subset(slice(0, limit))
        labels = {c: v[:limit] for c, v in labels.items()}
        colour = None if colour is None else colour[:limit]

    if is_cnn:
        spaces = {"model": model.embed_items(items)}
    else:
        model_images = items.images if model.input_shape[-1] == 3 else grey(items.images)
        spaces = {"model": embed(model, model_images)}
    if baselines:
        fit_items = fit()
        spaces.update(baseline_features(items.images, fit_items.images))
        if cnn:
            most = min(CNN_FIT_ITEMS, limit or CNN_FIT_ITEMS)
            dim = PCA_DIM if is_cnn else model.latent_dim
            spaces.update(cnn_features(items, fit_items.subset(slice(0, most)), dim))
    results = {name: neighbour_metrics(v, labels, k, colour) for name, v in spaces.items()}
    return {"k": k, "n_items": len(items), "split": used, "results": results}


def _training_part(meta: dict, items: Dataset, size, own: bool) -> Dataset:
    """The images PCA may be fitted on: the model's training split, never evaluated items."""
    source = meta.get("source", "")
    train_catalog = items if own else None
    if train_catalog is None and Path(source, "styles.csv").is_file():
        train_catalog = load_catalog(source, size=size)
    if train_catalog is None:
        return items
    train_mask = ~is_validation(train_catalog.ids, *split_settings(meta))
    fit = train_catalog.subset(train_mask)
    return fit.subset(slice(0, 5000))
