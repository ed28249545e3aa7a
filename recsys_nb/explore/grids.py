"""Image grids that teach: products per category, reconstructions, recommendations,
interpolation and traversal decoded to images, model-vs-colour disagreements."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data import Dataset
from ..embed import embed
from ..errors import RecsysError
from ..model import load_model
from .images import ImageGrid, _auto_scale, image_grid, thumbnails


def category_grid(
    data: Dataset,
    column: str = "articleType",
    n_categories: int = 8,
    per_category: int = 8,
    seed: int = 0,
    scale: int = 2,
) -> ImageGrid:
    """``per_category`` random (seeded) products of each of the most common categories."""
    if column not in data.meta.columns:
        raise RecsysError(f"no column {column!r}: the metadata has {', '.join(data.meta.columns)}")
    counts = data.meta[column].value_counts()
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for value in counts.index[:n_categories]:
        positions = np.flatnonzero(data.meta[column].to_numpy() == value)
        take = rng.choice(positions, min(per_category, len(positions)), replace=False)
        rows.append([data.images[i] for i in np.sort(take)])
        labels.append(f"{value} ({counts[value]})")
    return image_grid(rows, per_category, row_labels=labels, scale=scale, title=f"by {column}")


def reconstruct(model, images) -> np.ndarray:
    """The autoencoder's reconstructions of NHWC images in [0, 1]."""
    model = load_model(model)
    return np.asarray(model.autoencoder.predict(np.asarray(images, np.float32), verbose=0))


def reconstruction_grid(models, images, scale: int = 2) -> ImageGrid:
    """Originals in the first row, each model's reconstructions in a row below.

    ``models`` is one model or a ``{label: model}`` dict (to compare bottlenecks or losses).
    """
    if not isinstance(models, dict):
        models = {"reconstruction": models}
    images = np.asarray(images, np.float32)
    rows = [list(images)] + [list(reconstruct(m, images)) for m in models.values()]
    return image_grid(
        rows, len(images), row_labels=["original", *models], scale=scale, title="reconstructions"
    )


def recommendation_rows(
    store, query_ids, k: int = 6, data: Dataset | None = None, scale: int | None = None
) -> ImageGrid:
    """One row per query: the query product, then its ``k`` recommendations, best first."""
    rows, captions = [], []
    for qid in query_ids:
        table = store.recommend(qid, k=k)
        ids = [qid, *table["id"].tolist()]
        rows.append(list(thumbnails(ids, store.meta, data, store=store)))
        captions += ["query", *[f"{s:.3f}" for s in table["score"]]]
    scale = scale or _auto_scale(rows[0][0][None])
    return image_grid(
        rows,
        k + 1,
        captions=captions,
        row_labels=[str(q) for q in query_ids],
        scale=scale,
        label_width=50,
        title="recommendations",
    )


def interpolation_grid(model, image_a, image_b, steps: int = 8, scale: int = 2) -> ImageGrid:
    """Decode ``steps`` points on the straight line between two images' latent codes."""
    model = load_model(model)
    ends = np.stack([image_a, image_b]).astype(np.float32)
    codes = model.encoder.predict(ends, verbose=0)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    colours = np.where(t[:, :, None, None] < 0.5, ends[0], ends[1])  # colour_hint models
    decoded = model.decode((1 - t) * codes[0] + t * codes[1], colours)
    row = [image_a, *decoded, image_b]
    captions = ["A", *[f"{v:.2f}" for v in t[:, 0]], "B"]
    return image_grid([row], captions=captions, scale=scale, title="interpolation")


def _widest(std: np.ndarray, n: int) -> list[int]:
    return np.argsort(-std, kind="stable")[:n].tolist()


def varying_dims(model, images, n: int = 3) -> list[int]:
    """The ``n`` latent dimensions whose codes vary most over ``images`` (by std)."""
    model = load_model(model)
    codes = model.encoder.predict(np.asarray(images, np.float32), verbose=0)
    return _widest(codes.std(axis=0), n)


def traversal_grid(
    model,
    image,
    dims: Sequence[int] | None = None,
    steps: int = 7,
    span: float = 2.0,
    reference=None,
    scale: int = 2,
) -> ImageGrid:
    """Move one latent dimension at a time from ``-span`` to ``+span`` standard deviations.

    The standard deviation of each dimension is measured on ``reference`` images (default:
    the image alone, then 1 is used). ``dims``: the dimensions to move, by default the
    three that vary most over ``reference`` (the first three without it).
    """
    model = load_model(model)
    code = model.encoder.predict(np.asarray(image, np.float32)[None], verbose=0)[0]
    if reference is not None:
        std = model.encoder.predict(np.asarray(reference, np.float32), verbose=0).std(axis=0)
    else:
        std = np.ones_like(code)
    if dims is None:
        dims = _widest(std, 3) if reference is not None else [0, 1, 2]
    offsets = np.linspace(-span, span, steps, dtype=np.float32)
    rows = []
    for d in dims:
        codes = np.repeat(code[None], steps, axis=0)
        codes[:, d] += offsets * std[d]
        rows.append(list(model.decode(codes, image)))
    captions = [f"{o:+.1f} sd" for o in offsets] * len(dims)  # ASCII: every font has it
    return image_grid(
        rows,
        steps,
        captions=captions,
        row_labels=[f"dim {d}" for d in dims],
        scale=scale,
        label_width=50,
        title="traversal",
    )


AGAINST = {"colour": "colour hist", "cnn": "CNN"}  # what the model is compared with


def disagreements(
    model, data: Dataset, k: int = 5, n: int = 4, seed: int = 0, against: str = "colour"
) -> pd.DataFrame:
    """Queries whose ``k`` neighbours differ most between the model and another embedding.

    ``against``: ``"colour"`` (a colour histogram of the pictures) or ``"cnn"`` (the
    pretrained CNN's features of the image files, :mod:`recsys_nb.cnn`). For every item
    of ``data``, the overlap of the two top-k lists; returns the ``n`` items with the
    smallest overlap (ties broken by a seeded shuffle) with both lists: ``id, overlap,
    model_ids, other_ids`` (and ``against`` in ``DataFrame.attrs``).
    """
    from ..recommend import top_k

    if against not in AGAINST:
        raise RecsysError(f"against={against!r}: choose one of {', '.join(AGAINST)}")
    if len(data) <= k:
        raise RecsysError(f"need more than k={k} items, got {len(data)}")
    if against == "cnn":
        from ..cnn import dataset_features

        other = dataset_features(data)
    else:
        from ..evaluate import colour_histogram

        other = colour_histogram(_colour_images(data))
    neighbours = []
    for v in (embed(model, data.images), other):
        v = np.asarray(v, np.float32)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        neighbours.append(top_k(v, v, k, exclude=np.arange(len(v)))[0])
    mine, theirs = neighbours
    overlap = np.array(
        [len(set(a) & set(b)) for a, b in zip(mine.tolist(), theirs.tolist(), strict=True)]
    )
    order = np.random.default_rng(seed).permutation(len(data))
    chosen = order[np.argsort(overlap[order], kind="stable")[:n]]
    table = pd.DataFrame(
        {
            "id": data.ids[chosen],
            "overlap": overlap[chosen],
            "model_ids": [data.ids[mine[i]].tolist() for i in chosen],
            "other_ids": [data.ids[theirs[i]].tolist() for i in chosen],
        }
    )
    table.attrs["against"] = against
    return table


def _colour_images(data: Dataset) -> np.ndarray:
    """The items in colour in [0, 1]: the dataset's own, or read again from their files
    (a greyscale model's dataset)."""
    from ..data import load_image

    if data.images.shape[-1] == 3:
        return data.images
    if "image_path" not in data.meta.columns:
        raise RecsysError("a colour histogram needs colour images: these are grey, with no files")
    size = data.images.shape[1:3]
    pictures = [load_image(p, size=size, channels=3) for p in data.meta["image_path"]]
    return np.stack(pictures).astype(np.float32) / 255.0


def disagreement_shares(
    table: pd.DataFrame, meta: pd.DataFrame, columns=("articleType", "baseColour")
) -> pd.DataFrame:
    """For the queries of :func:`disagreements`: the share of each row's neighbours that
    have the query's value of each column (the model's row and the other's)."""
    other = AGAINST[table.attrs.get("against", "colour")]
    out = {}
    for name, key in (("model", "model_ids"), (other, "other_ids")):
        out[name] = {
            f"same {column}": float(
                np.mean(
                    [
                        meta.at[item, column] == meta.at[query, column]
                        for query, items in zip(table["id"], table[key], strict=True)
                        for item in items
                    ]
                )
            )
            for column in columns
        }
    return pd.DataFrame(out).T


def disagreement_grid(table: pd.DataFrame, data: Dataset, scale: int = 2) -> ImageGrid:
    """For each query of :func:`disagreements`: the model's row, then the other's."""
    other = AGAINST[table.attrs.get("against", "colour")]
    rows, labels = [], []
    for rec in table.itertuples():
        rows.append(list(thumbnails([rec.id, *rec.model_ids], data=data)))
        rows.append([None, *thumbnails(rec.other_ids, data=data)])
        labels += [f"{rec.id} model", other]
    return image_grid(
        rows, row_labels=labels, scale=scale, label_width=90, title=f"model vs {other}"
    )
