"""Stage 6, explore: look inside the latent space.

What the notebooks call, so that they stay thin:

- the notebooks' catalogue and models: :func:`notebook_catalog` and
  :func:`notebook_model` (in quick mode, ``RECSYS_NB_QUICK=1``, a 2,000-item catalogue
  at 32x24 pixels and small models in ``models/quick-<name>``, trained once and reused);
- 2-D maps of the embeddings: :func:`umap_projection` (umap-learn, seeded, cached in
  the model folder so that a re-run is instant), :func:`pca_projection`,
  :func:`projection_frame` and :func:`neighbour_preservation` to compare them;
- figures: :func:`map_figure` (plotly, coloured by a metadata column) and
  :class:`LatentExplorer` (a ``go.FigureWidget`` with the hovered or clicked product's
  photo beside it and the lasso/box selection shown as an image grid);
- image grids (:class:`ImageGrid`): products per category, reconstructions next to
  originals, recommendation rows, interpolation and traversal decoded to images,
  model-vs-colour disagreements;
- standalone HTML files: :func:`export_umap_html` and :func:`export_recommendations_html`
  (plotly's ``write_html``, images embedded as data URIs, plotly.js included).

umap-learn, plotly and ipywidgets are imported only by the functions that need them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from . import settings
from .data import Dataset, data_root, load_catalog, load_image
from .embed import Embeddings, embed, embed_catalog
from .errors import RecsysError
from .model import TrainedModel, load_model
from .recipe import Recipe
from .train import model_dir, quick_mode

# --- the notebooks' data and models ---------------------------------------------------

QUICK_ITEMS = 2000
QUICK_SIZE = (32, 24)  # height, width: a quarter of the pixels of the full 64x48
# the notebooks' own product models when make demo's are not there
QUICK_RECIPE = Recipe(
    dataset="products",
    epochs=15,
    image_size=QUICK_SIZE,
    filters=(16, 32),
    batch_size=64,
    learning_rate=2e-3,
)
FULL_RECIPE = Recipe(dataset="products", epochs=20)
COLOR_COLUMNS = ("articleType", "baseColour", "masterCategory", "subCategory", "gender")
MAX_LEGEND = 12  # categories shown by name in a map; the rest become "other"
THUMB_SIZE = (80, 60)  # height, width of thumbnails (the photos are 60x80)


def notebook_catalog(quick: bool | None = None, items: int = QUICK_ITEMS) -> Path:
    """The catalogue folder the notebooks use.

    Full mode: the shared catalogue (``$RECSYS_NB_DATA/fashion-products``). Quick mode:
    ``data/quick-catalog-2000/`` under the home folder (:mod:`recsys_nb.settings`), its
    first 2,000 rows (``styles.csv`` plus links to the images), created on first use.
    """
    source = data_root() / "fashion-products"
    if not quick_mode(quick):
        return source
    folder = settings.quick_catalog_dir(items)
    styles = folder / "styles.csv"
    if styles.is_file() and (folder / "images").is_dir():
        return folder
    if not (source / "styles.csv").is_file():
        load_catalog(source)  # raises the loader's error: where to get the data
    lines = (source / "styles.csv").read_text().splitlines()[: items + 1]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for line in lines[1:]:
        name = f"{line.split(',', 1)[0]}.jpg"
        target, link = source / "images" / name, folder / "images" / name
        if target.is_file() and not link.exists():
            os.symlink(target, link)
    tmp = styles.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(styles)
    return folder


def notebook_model(
    name: str = "products",
    *,
    latent_dim: int = 32,
    loss: str = "bce",
    quick: bool | None = None,
    retrain: bool = False,
    verbose=0,
    callbacks: list | None = None,
    recipe: Recipe | None = None,
) -> TrainedModel:
    """A product model for the notebooks: reused when already trained, else trained now.

    Quick mode: ``models/quick-<name>`` trained with :data:`QUICK_RECIPE` on the quick
    catalogue (under a minute on 2 cores). Full mode: ``models/<name>`` (``make demo``
    trains ``models/products``, which is used as it is), else trained with
    :data:`FULL_RECIPE` on the whole catalogue. A variant (another ``latent_dim`` or
    ``loss``) gets its own folder, ``<name>-z<latent_dim>-<loss>``; ``recipe`` replaces
    the mode's recipe.
    """
    from .train import train

    quick = quick_mode(quick)
    recipe = (recipe or (QUICK_RECIPE if quick else FULL_RECIPE)).replace(
        latent_dim=latent_dim, loss=loss
    )
    if (latent_dim, loss) != (32, "bce"):
        name = f"{name}-z{latent_dim}-{loss}"
    folder = model_dir(f"quick-{name}" if quick else name)
    if not retrain and (folder / "meta.json").is_file():
        meta = json.loads((folder / "meta.json").read_text())
        if recipe.matches(meta, quick) or (not quick and name == "products"):
            return load_model(folder)
    catalog = notebook_catalog(quick)
    return train(
        recipe.replace(dataset=str(catalog)),
        str(folder),
        quick=quick,
        resume=not quick,
        verbose=verbose,
        callbacks=callbacks,
    )


def model_items(model, catalog=None) -> Dataset:
    """The catalogue (default: the model's own) at the model's input size."""
    model = load_model(model)
    height, width, channels = model.input_shape
    source = catalog or model.meta.get("source")
    return load_catalog(source, size=(height, width), channels=channels)


# --- 2-D maps of the latent space -----------------------------------------------------


def _vectors(embeddings) -> np.ndarray:
    return np.asarray(getattr(embeddings, "vectors", embeddings), dtype=np.float32)


def umap_projection(
    embeddings,
    cache_dir=None,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    seed: int = 0,
) -> np.ndarray:
    """UMAP of the embeddings to 2-D, ``(n, 2)`` float32; seeded, so a re-run gives the same map.

    With ``cache_dir`` (a model folder, or a :class:`TrainedModel`) the result is kept
    there as ``umap-<key>.npz``, keyed by the vectors, ids and parameters: computing it
    again for the same model and catalogue is instant.
    """
    vectors = _vectors(embeddings)
    if len(vectors) < 3:
        raise RecsysError(f"UMAP needs at least 3 items, got {len(vectors)}")
    cache = None
    if cache_dir is not None:
        folder = getattr(cache_dir, "path", cache_dir)
        key = hashlib.sha1()
        key.update(np.ascontiguousarray(vectors).tobytes())
        key.update(np.asarray(getattr(embeddings, "ids", np.arange(len(vectors)))).tobytes())
        key.update(f"{n_neighbors}|{min_dist}|{metric}|{seed}".encode())
        cache = Path(folder) / f"umap-{key.hexdigest()[:16]}.npz"
        if cache.is_file():
            with np.load(cache) as npz:
                return npz["coords"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value 1 overridden.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="umap")
        import umap

        reducer = umap.UMAP(
            n_neighbors=min(n_neighbors, len(vectors) - 1),
            min_dist=min_dist,
            metric=metric,
            random_state=seed,
            n_components=2,
        )
        coords = reducer.fit_transform(vectors).astype(np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, coords=coords)
        tmp.replace(cache)
    return coords


def pca_projection(embeddings, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components ``(n, 2)`` and the variance ratio each explains."""
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=seed).fit(_vectors(embeddings))
    return pca.transform(_vectors(embeddings)).astype(np.float32), pca.explained_variance_ratio_


def neighbour_preservation(embeddings, coords: np.ndarray, k: int = 10) -> float:
    """Share of each item's ``k`` latent-space neighbours that stay among its ``k`` in 2-D."""
    from .recommend import top_k

    vectors = _vectors(embeddings)
    n = len(vectors)
    latent, _ = top_k(vectors, vectors, k, exclude=np.arange(n))
    xy = np.asarray(coords, dtype=np.float64)
    d2 = (xy**2).sum(1)[:, None] + (xy**2).sum(1)[None, :] - 2 * xy @ xy.T
    np.fill_diagonal(d2, np.inf)
    flat = np.argpartition(d2, k - 1, axis=1)[:, :k]
    hits = [len(set(a) & set(b)) for a, b in zip(latent.tolist(), flat.tolist(), strict=True)]
    return float(np.sum(hits) / (n * k))


def projection_frame(embeddings: Embeddings, coords: np.ndarray, meta=None) -> pd.DataFrame:
    """Ids, ``x``, ``y`` and the metadata columns, one row per item, indexed by id."""
    meta = embeddings.meta if meta is None else meta
    index = pd.Index(embeddings.ids, name="id")
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]}, index=index)
    return frame.join(meta.reindex(embeddings.ids))


def store_map(store, method: str = "umap", seed: int = 0) -> pd.DataFrame:
    """:func:`projection_frame` of any store's vectors (a MongoStore by URI alone too), by
    ``"umap"`` (cached under the cache folder, keyed by the vectors) or ``"pca"``."""
    if method == "umap":
        coords = umap_projection(store, settings.cache_dir() / "umap", seed=seed)
    elif method == "pca":
        coords = pca_projection(store.vectors, seed)[0]
    else:
        raise RecsysError(f"method must be 'umap' or 'pca', got {method!r}")
    return projection_frame(store, coords, store.meta)


def latent_map(model, catalog=None, method: str = "umap", seed: int = 0) -> pd.DataFrame:
    """:func:`projection_frame` of a model's catalogue embeddings, by ``"umap"`` or ``"pca"``."""
    model = load_model(model)
    emb = embed_catalog(model, catalog)
    if method == "umap":
        coords = umap_projection(emb, model, seed=seed)
    elif method == "pca":
        coords = pca_projection(emb, seed)[0]
    else:
        raise RecsysError(f"method must be 'umap' or 'pca', got {method!r}")
    return projection_frame(emb, coords)


# --- images --------------------------------------------------------------------------


def to_uint8(images) -> np.ndarray:
    """Images (float in [0, 1] or uint8; grey or RGB) as uint8 RGB."""
    a = np.asarray(images)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return a


def encode_image(image, fmt: str = "JPEG", quality: int = 85) -> bytes:
    """One image (array or PIL) as JPEG or PNG bytes."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(to_uint8(image))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": quality} if fmt.upper() == "JPEG" else {}))
    return buf.getvalue()


def data_uri(image, fmt: str = "JPEG") -> str:
    """An image as a ``data:`` URI (for HTML and plotly layout images)."""
    mime = "jpeg" if fmt.upper() == "JPEG" else fmt.lower()
    return f"data:image/{mime};base64,{base64.b64encode(encode_image(image, fmt)).decode()}"


def thumbnails(
    ids,
    meta: pd.DataFrame | None = None,
    data: Dataset | None = None,
    size=THUMB_SIZE,
    *,
    store=None,
) -> np.ndarray:
    """uint8 RGB pictures of ``ids`` (height x width ``size``): from ``data`` (its pixels),
    else the ``store``'s thumbnails (any store: a MongoStore needs no image files), else
    the photos in the ``image_path`` column of ``meta``. A missing picture is white."""
    ids = list(ids)
    if data is not None:
        position = pd.Series(np.arange(len(data.ids)), index=data.ids)
        return to_uint8(data.images[position.loc[ids].to_numpy()])
    if store is not None and callable(getattr(store, "thumbnails", None)):
        from .protocol import as_id, decode_picture

        found = store.thumbnails(ids)
        blank = np.full((*size, 3), 255, np.uint8)
        pics = [found.get(as_id(i)) for i in ids]
        return np.stack([blank if p is None else decode_picture(p[0], size) for p in pics])
    if meta is None or "image_path" not in meta.columns:
        raise RecsysError(
            "give data= (a Dataset), store= or a metadata table with an image_path column"
        )
    paths = meta["image_path"].reindex(ids)
    return np.stack([load_image(p, size, 3) for p in paths])


def _font(size: int = 10):
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


class ImageGrid:
    """A grid of pictures as one PIL image; shown as a JPEG in a notebook.

    ``rows`` x ``cols`` cells; ``image`` is the PIL image, :meth:`save` writes a file.
    """

    def __init__(self, image: Image.Image, rows: int, cols: int, title: str = ""):
        self.image, self.rows, self.cols, self.title = image, rows, cols, title

    def __repr__(self) -> str:
        title = f", {self.title!r}" if self.title else ""
        return f"ImageGrid({self.rows} rows x {self.cols} columns{title})"

    def _repr_jpeg_(self) -> bytes:
        return encode_image(self.image, "JPEG", 90)

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.image.save(path)
        return path


def image_grid(
    images,
    ncols: int | None = None,
    *,
    captions: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    scale: int = 2,
    pad: int = 4,
    label_width: int = 110,
    title: str = "",
) -> ImageGrid:
    """Pictures (n, h, w, c) in rows of ``ncols``; a caption under each, a label per row.

    ``images`` may also be a list of rows (lists of images); an empty cell is ``None``.
    """
    if isinstance(images, np.ndarray):
        ncols = ncols or min(len(images), 8)
        cells = [to_uint8(images[i]) for i in range(len(images))]
        rows = [cells[i : i + ncols] for i in range(0, len(cells), ncols)]
    else:
        rows = [[None if c is None else to_uint8(c) for c in row] for row in images]
        ncols = ncols or max((len(r) for r in rows), default=0)
    if not rows or ncols == 0:
        raise RecsysError("no images to show")
    first = next(c for r in rows for c in r if c is not None)
    h, w = first.shape[0] * scale, first.shape[1] * scale
    font = _font(10 if scale < 3 else 12)
    cap_h = 14 if captions is not None else 0
    left = label_width if row_labels is not None else 0
    width = left + ncols * (w + pad) + pad
    height = len(rows) * (h + cap_h + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    k = 0
    for r, row in enumerate(rows):
        y = pad + r * (h + cap_h + pad)
        if row_labels is not None and r < len(row_labels):
            draw.text(
                (4, y + h // 2 - 6),
                _fit_text(str(row_labels[r]), label_width - 8, font),
                fill="black",
                font=font,
            )
        for c, cell in enumerate(row):
            x = left + pad + c * (w + pad)
            if cell is not None:
                img = Image.fromarray(cell)
                canvas.paste(
                    img.resize(
                        (w, h),
                        Image.Resampling.NEAREST
                        if scale > 1 and cell.shape[0] < 40
                        else Image.Resampling.BILINEAR,
                    ),
                    (x, y),
                )
            if captions is not None and k < len(captions) and captions[k]:
                draw.text(
                    (x, y + h + 1), _fit_text(str(captions[k]), w, font), fill="black", font=font
                )
            k += 1
    return ImageGrid(canvas, len(rows), ncols, title)


def _fit_text(text: str, width: int, font) -> str:
    while text and font.getlength(text) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


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


def traversal_grid(
    model,
    image,
    dims: Sequence[int] = (0, 1, 2),
    steps: int = 7,
    span: float = 2.0,
    reference=None,
    scale: int = 2,
) -> ImageGrid:
    """Move one latent dimension at a time from ``-span`` to ``+span`` standard deviations.

    The standard deviation of each dimension is measured on ``reference`` images (default:
    the image alone, then 1 is used).
    """
    model = load_model(model)
    code = model.encoder.predict(np.asarray(image, np.float32)[None], verbose=0)[0]
    if reference is not None:
        std = model.encoder.predict(np.asarray(reference, np.float32), verbose=0).std(axis=0)
    else:
        std = np.ones_like(code)
    offsets = np.linspace(-span, span, steps, dtype=np.float32)
    rows = []
    for d in dims:
        codes = np.repeat(code[None], steps, axis=0)
        codes[:, d] += offsets * std[d]
        rows.append(list(model.decode(codes, image)))
    captions = [f"{o:+.1f}σ" for o in offsets] * len(dims)
    return image_grid(
        rows,
        steps,
        captions=captions,
        row_labels=[f"dim {d}" for d in dims],
        scale=scale,
        label_width=50,
        title="traversal",
    )


# --- shape or colour? ------------------------------------------------------------------


def disagreements(model, data: Dataset, k: int = 5, n: int = 4, seed: int = 0) -> pd.DataFrame:
    """Queries whose ``k`` neighbours differ most between the model and the colour baseline.

    For every item of ``data`` (the model's embedding vs a colour histogram), the overlap of
    the two top-k lists; returns the ``n`` items with the smallest overlap (ties broken
    by a seeded shuffle) with both lists: ``id, overlap, model_ids, colour_ids``.
    """
    from .evaluate import colour_histogram
    from .recommend import top_k

    if len(data) <= k:
        raise RecsysError(f"need more than k={k} items, got {len(data)}")
    spaces = {"model": embed(model, data.images), "colour": colour_histogram(data.images)}
    neighbours = {}
    for name, v in spaces.items():
        v = np.asarray(v, np.float32)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        neighbours[name], _ = top_k(v, v, k, exclude=np.arange(len(v)))
    pairs = zip(neighbours["model"].tolist(), neighbours["colour"].tolist(), strict=True)
    overlap = np.array([len(set(a) & set(b)) for a, b in pairs])
    order = np.random.default_rng(seed).permutation(len(data))
    chosen = order[np.argsort(overlap[order], kind="stable")[:n]]
    return pd.DataFrame(
        {
            "id": data.ids[chosen],
            "overlap": overlap[chosen],
            "model_ids": [data.ids[neighbours["model"][i]].tolist() for i in chosen],
            "colour_ids": [data.ids[neighbours["colour"][i]].tolist() for i in chosen],
        }
    )


def disagreement_grid(table: pd.DataFrame, data: Dataset, scale: int = 2) -> ImageGrid:
    """For each query of :func:`disagreements`: a model row and a colour-baseline row."""
    rows, labels = [], []
    for rec in table.itertuples():
        rows.append(list(thumbnails([rec.id, *rec.model_ids], data=data)))
        rows.append([None, *thumbnails(rec.colour_ids, data=data)])
        labels += [f"{rec.id} model", "colour hist"]
    return image_grid(rows, row_labels=labels, scale=scale, label_width=90, title="model vs colour")


# --- plotly figures -------------------------------------------------------------------


def _categories(values: pd.Series, max_legend: int = MAX_LEGEND) -> pd.Series:
    values = values.astype(str).replace("", "(none)")
    top = values.value_counts().index[:max_legend]
    return values.where(values.isin(top), "other")


def _hover_text(frame: pd.DataFrame) -> list[str]:
    name = next((c for c in ("productDisplayName", "name", "label") if c in frame.columns), None)
    parts = [frame.index.astype(str)]
    if name:
        parts.append(frame[name].astype(str))
    extra = [c for c in ("articleType", "baseColour") if c in frame.columns]
    for c in extra:
        parts.append(frame[c].astype(str))
    return [" · ".join(p) for p in zip(*parts, strict=True)]


def map_figure(
    frame: pd.DataFrame,
    color: str = "articleType",
    *,
    widget: bool = False,
    title: str = "",
    thumbnails_uri: Sequence[str] | None = None,
    max_legend: int = MAX_LEGEND,
):
    """A scatter plot of a :func:`projection_frame`, one trace per category of ``color``.

    Points carry their id in ``customdata`` (and a thumbnail data URI as second field when
    ``thumbnails_uri`` is given, for the HTML export). ``widget=True`` returns a
    ``go.FigureWidget`` (for callbacks in a notebook), else a ``go.Figure``.
    """
    import plotly.graph_objects as go

    if color not in frame.columns:
        raise RecsysError(f"cannot colour by {color!r}: the table has {', '.join(frame.columns)}")
    groups = _categories(frame[color], max_legend)
    order = [*groups.value_counts().index.drop("other", errors="ignore"), "other"]
    text = np.asarray(_hover_text(frame), dtype=object)
    ids = frame.index.to_numpy()
    traces = []
    for value in order:
        mask = (groups == value).to_numpy()
        if not mask.any():
            continue
        custom = ids[mask][:, None]
        if thumbnails_uri is not None:
            custom = np.column_stack([ids[mask], np.asarray(thumbnails_uri, dtype=object)[mask]])
        traces.append(
            go.Scattergl(
                x=frame["x"].to_numpy()[mask],
                y=frame["y"].to_numpy()[mask],
                mode="markers",
                name=f"{value} ({int(mask.sum())})",
                text=text[mask],
                customdata=custom,
                hovertemplate="%{text}<extra></extra>",
                marker={
                    "size": 5,
                    "opacity": 0.8,
                    **({"color": "lightgrey"} if value == "other" else {}),
                },
            )
        )
    layout = {
        "title": title or f"coloured by {color}",
        "template": "plotly_white",
        "height": 560,
        "dragmode": "lasso",
        "legend": {"itemsizing": "constant"},
        "xaxis": {"showticklabels": False, "title": ""},
        "yaxis": {"showticklabels": False, "title": ""},
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
    }
    return (go.FigureWidget if widget else go.Figure)(data=traces, layout=layout)


def history_figure(model):
    """Training and validation loss per epoch of a trained model (a ``go.FigureWidget``)."""
    import plotly.graph_objects as go

    history = load_model(model).meta.get("history", {})
    fig = go.FigureWidget(
        layout={
            "template": "plotly_white",
            "height": 320,
            "xaxis": {"title": "epoch"},
            "yaxis": {"title": "loss"},
            "margin": {"t": 30},
        }
    )
    for key in ("loss", "val_loss"):
        values = history.get(key, [])
        fig.add_scatter(x=list(range(1, len(values) + 1)), y=values, name=key, mode="lines+markers")
    return fig


class LatentExplorer:
    """The latent map to explore in a notebook: hover or click a point to see the product,
    lasso or box-select points to see them as an image grid.

    ``LatentExplorer(frame)`` with a :func:`projection_frame` (or :func:`latent_map`);
    images come from ``data`` (a Dataset), a ``store`` (its thumbnails: a MongoStore needs
    no image files) or the ``image_path`` column. :meth:`from_store` maps any store's
    vectors. Display it as the last expression of a cell. :meth:`color_by` switches the
    colouring, :meth:`select` and :meth:`select_box` select from code, :meth:`selection`
    returns the selected rows.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        color: str = "articleType",
        *,
        data: Dataset | None = None,
        store=None,
        grid_columns: int = 8,
        max_grid: int = 48,
    ):
        import ipywidgets as w

        self.frame, self.data, self.store = frame, data, store
        self.grid_columns, self.max_grid = grid_columns, max_grid
        self._selected: dict[int, list[int]] = {}
        self.figure = map_figure(frame, color, widget=True)
        self.figure.layout.width = 640
        options = [c for c in COLOR_COLUMNS if c in frame.columns] or [color]
        self.color_menu = w.Dropdown(options=options, value=color, description="colour by")
        self.color_menu.observe(lambda change: self.color_by(change["new"]), names="value")
        self.preview = w.Image(format="jpeg", width=120, height=160)
        self.caption = w.HTML("hover or click a point")
        self.grid = w.Image(format="jpeg")
        self.grid_caption = w.HTML("lasso or box-select points to see them here")
        self._hook()
        panel = w.VBox(
            [self.color_menu, self.preview, self.caption, self.grid_caption, self.grid],
            layout=w.Layout(width="420px"),
        )
        self.widget = w.HBox([self.figure, panel])

    @classmethod
    def from_store(
        cls, store, color: str = "articleType", *, method: str = "umap", seed: int = 0, **kwargs
    ) -> LatentExplorer:
        """The map of a store's vectors (:func:`store_map`), pictures from its thumbnails."""
        return cls(store_map(store, method, seed), color, store=store, **kwargs)

    def _pictures(self, ids, size=THUMB_SIZE) -> np.ndarray:
        return thumbnails(ids, self.frame, self.data, size, store=self.store)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return f"LatentExplorer({len(self.frame)} points, coloured by {self.color_menu.value!r})"

    def _hook(self):
        for trace in self.figure.data:
            trace.on_hover(self._on_point)
            trace.on_click(self._on_point)
            trace.on_selection(self._on_selection)
            trace.on_deselect(lambda tr, pts, *_: self.select([]))

    def _on_point(self, trace, points, *_):
        if points.point_inds:
            self.show_product(trace.customdata[points.point_inds[0]][0])

    def _on_selection(self, trace, points, *_):
        self._selected[points.trace_index] = list(points.point_inds)
        self._show_grid(self.selection().index)

    def show_product(self, item_id) -> None:
        """Show one product's picture and description in the side panel."""
        pic = self._pictures([item_id])[0]
        self.preview.value = encode_image(Image.fromarray(pic).resize((120, 160)))
        text = _hover_text(self.frame.loc[[item_id]])[0]
        self.caption.value = f"<b>{text}</b>"

    def color_by(self, column: str) -> None:
        """Colour the points by another metadata column (articleType, baseColour, ...)."""
        new = map_figure(self.frame, column, widget=False)
        with self.figure.batch_update():
            self.figure.data = []
            self.figure.add_traces(list(new.data))
            self.figure.layout.title = new.layout.title
        self._selected = {}
        self._hook()
        if self.color_menu.value != column:
            self.color_menu.value = column

    def select(self, ids) -> pd.DataFrame:
        """Select products by id (as a lasso would): highlighted in the map, shown as a grid."""
        wanted = set(np.asarray(list(ids)).tolist())
        self._selected = {}
        with self.figure.batch_update():
            for t, trace in enumerate(self.figure.data):
                inds = [i for i, c in enumerate(trace.customdata) if c[0] in wanted]
                self._selected[t] = inds
                trace.selectedpoints = inds if wanted else None
        self._show_grid([i for i in self.frame.index if i in wanted])
        return self.selection()

    def select_box(self, x0: float, x1: float, y0: float, y1: float) -> pd.DataFrame:
        """Select the points inside a rectangle of the map (what the box tool does)."""
        f = self.frame
        inside = f["x"].between(min(x0, x1), max(x0, x1)) & f["y"].between(min(y0, y1), max(y0, y1))
        return self.select(f.index[inside])

    def selection(self) -> pd.DataFrame:
        """The selected products' rows (id, x, y and metadata)."""
        ids = [
            self.figure.data[t].customdata[i][0]
            for t, inds in sorted(self._selected.items())
            for i in inds
        ]
        return self.frame.loc[[i for i in self.frame.index if i in set(ids)]]

    def selection_grid(self) -> ImageGrid | None:
        """The selected products as an :class:`ImageGrid` (the first ``max_grid``)."""
        ids = self.selection().index[: self.max_grid]
        if len(ids) == 0:
            return None
        pics = self._pictures(ids)
        return image_grid(
            pics,
            self.grid_columns,
            scale=_auto_scale(pics),
            title=f"{len(self.selection())} selected",
        )

    def _show_grid(self, ids) -> None:
        ids = list(dict.fromkeys(ids))
        if not ids:
            self.grid.value = b""
            self.grid_caption.value = "lasso or box-select points to see them here"
            return
        shown = ids[: self.max_grid]
        pics = self._pictures(shown)
        grid = image_grid(pics, self.grid_columns, scale=_auto_scale(pics))
        self.grid.value = encode_image(grid.image)
        more = f" (first {len(shown)} shown)" if len(ids) > len(shown) else ""
        self.grid_caption.value = f"<b>{len(ids)} selected</b>{more}"


def _auto_scale(pics: np.ndarray) -> int:
    return 2 if pics.shape[1] < 50 else 1


# --- standalone HTML -----------------------------------------------------------------

_HOVER_IMAGE_JS = """
var gd = document.getElementById('{plot_id}');
var box = document.createElement('div');
box.style.cssText = 'position:fixed;top:12px;right:12px;background:#fff;border:1px solid #ccc;'
  + 'padding:6px;font:12px sans-serif;max-width:180px;display:none;z-index:10';
var img = document.createElement('img');
img.style.cssText = 'width:120px;display:block;margin-bottom:4px';
var cap = document.createElement('div');
box.appendChild(img); box.appendChild(cap); document.body.appendChild(box);
function show(ev) {
  var p = ev.points[0]; if (!p || !p.customdata) return;
  img.src = p.customdata[1]; cap.textContent = p.text; box.style.display = 'block';
}
gd.on('plotly_hover', show);
gd.on('plotly_click', show);
"""


def _export_path(path, default_name: str) -> Path:
    path = Path(path) if path is not None else settings.exports_dir() / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def export_umap_html(
    frame: pd.DataFrame,
    path=None,
    color: str = "articleType",
    *,
    data: Dataset | None = None,
    store=None,
    title: str = "",
) -> Path:
    """The map as one standalone HTML file: plotly.js and every thumbnail (data URIs)
    embedded; hovering or clicking a point shows its photo. Pictures come from ``data``,
    a ``store``'s thumbnails or the ``image_path`` column. Default:
    ``data/exports/umap.html``.
    """
    pics = thumbnails(frame.index, frame, data, size=(64, 48), store=store)
    uris = [data_uri(p) for p in pics]
    fig = map_figure(frame, color, thumbnails_uri=uris, title=title or f"latent map, by {color}")
    path = _export_path(path, "umap.html")
    fig.write_html(path, include_plotlyjs=True, full_html=True, post_script=_HOVER_IMAGE_JS)
    return path


def recommendation_figure(store, query_ids, k: int = 6, data: Dataset | None = None):
    """Queries and their recommendations as a plotly figure of pictures (hover: name, score)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    meta = store.meta
    xs, ys, texts = [], [], []
    for r, qid in enumerate(query_ids):
        table = store.recommend(qid, k=k)
        ids = [qid, *table["id"].tolist()]
        scores = [None, *table["score"].tolist()]
        pics = thumbnails(ids, meta, data, store=store)
        for c, (item, pic) in enumerate(zip(ids, pics, strict=True)):
            fig.add_layout_image(
                source=data_uri(pic),
                x=c,
                y=-r,
                xref="x",
                yref="y",
                sizex=0.9,
                sizey=0.9,
                xanchor="center",
                yanchor="middle",
                sizing="contain",
                layer="above",
            )
            known = item in meta.index
            label = _hover_text(meta.loc[[item]])[0] if known else str(item)
            xs.append(c)
            ys.append(-r)
            texts.append(("query: " if c == 0 else f"#{c}, score {scores[c]:.3f}: ") + label)
    fig.add_scatter(
        x=xs,
        y=ys,
        text=texts,
        mode="markers",
        hovertemplate="%{text}<extra></extra>",
        marker={"size": 40, "opacity": 0},
        showlegend=False,
    )
    n = len(query_ids)
    fig.update_layout(
        template="plotly_white",
        width=110 * (k + 1) + 40,
        height=140 * n + 60,
        title="products like these (first column: the query)",
        xaxis={"range": [-0.5, k + 0.5], "visible": False},
        yaxis={"range": [-n + 0.5, 0.5], "visible": False, "scaleanchor": "x", "scaleratio": 1.33},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def export_recommendations_html(
    store, query_ids, path=None, k: int = 6, data: Dataset | None = None
) -> Path:
    """Recommendation rows as one standalone HTML file (plotly.js and images embedded)."""
    fig = recommendation_figure(store, query_ids, k, data)
    path = _export_path(path, "recommendations.html")
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def save_map_png(frame: pd.DataFrame, path, color: str = "masterCategory", size=(900, 640)) -> Path:
    """A static picture of the map (PIL, no plotly export engine needed): one dot per item."""
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
        "#393b79",
        "#637939",
    ]
    groups = _categories(frame[color], len(palette) - 1)
    order = [*groups.value_counts().index.drop("other", errors="ignore"), "other"]
    width, height = size
    legend_w = 190
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    m = 20
    px = m + (x - x.min()) / max(np.ptp(x), 1e-9) * (width - legend_w - 2 * m)
    py = m + (1 - (y - y.min()) / max(np.ptp(y), 1e-9)) * (height - 2 * m)
    font = _font(13)
    for n, value in enumerate(order):
        colour = "#c8c8c8" if value == "other" else palette[n % len(palette)]
        mask = (groups == value).to_numpy()
        if not mask.any():
            continue
        for a, b in zip(px[mask], py[mask], strict=True):
            draw.ellipse((a - 2, b - 2, a + 2, b + 2), fill=colour)
        ly = m + 20 * n
        draw.ellipse((width - legend_w + 4, ly + 3, width - legend_w + 14, ly + 13), fill=colour)
        draw.text(
            (width - legend_w + 20, ly), f"{value} ({int(mask.sum())})", fill="black", font=font
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


__all__ = [
    "ImageGrid",
    "LatentExplorer",
    "category_grid",
    "data_uri",
    "disagreement_grid",
    "disagreements",
    "encode_image",
    "export_recommendations_html",
    "export_umap_html",
    "history_figure",
    "image_grid",
    "interpolation_grid",
    "latent_map",
    "map_figure",
    "model_items",
    "neighbour_preservation",
    "notebook_catalog",
    "notebook_model",
    "pca_projection",
    "projection_frame",
    "recommendation_figure",
    "recommendation_rows",
    "reconstruct",
    "reconstruction_grid",
    "save_map_png",
    "store_map",
    "thumbnails",
    "to_uint8",
    "traversal_grid",
    "umap_projection",
]
