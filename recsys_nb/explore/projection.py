"""2-D maps of the latent space: UMAP (seeded, cached), PCA, and how well they keep neighbours."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .. import settings
from ..embed import Embeddings, embed_catalog
from ..errors import RecsysError
from ..model import load_model


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
    """Share of each item's ``k`` latent-space neighbours that stay among its ``k`` in 2-D.

    Latent neighbours: the highest dot products (cosine for unit vectors), by
    :func:`~recsys_nb.recommend.top_k`, chunked over queries; 2-D neighbours: the nearest
    by Euclidean distance, from a k-d tree. Both leave the item itself out. Memory is
    O(n * k) plus one chunk of scores: no n x n matrix (15 GB at 44k items).
    """
    from sklearn.neighbors import NearestNeighbors

    from ..recommend import top_k

    vectors = _vectors(embeddings)
    xy = np.asarray(coords, dtype=np.float64)
    n = len(vectors)
    if xy.shape != (n, 2):
        raise RecsysError(f"coords must be ({n}, 2) for {n} vectors, got {xy.shape}")
    if not 0 < k < n:
        raise RecsysError(f"k must be between 1 and {n - 1} (the items less one), got {k}")
    latent, _ = top_k(vectors, vectors, k, exclude=np.arange(n))
    # kneighbors() without X: each fitted point's neighbours, the point itself left out
    flat = NearestNeighbors(n_neighbors=k).fit(xy).kneighbors(return_distance=False)
    # each row's k indices are distinct: in both lists side by side and sorted, an index
    # found in both is the only way two neighbours can be equal
    both = np.sort(np.concatenate([latent, flat], axis=1), axis=1)
    hits = np.count_nonzero(both[:, 1:] == both[:, :-1])
    return float(hits / (n * k))


def map_agreement(
    frame: pd.DataFrame, columns=("articleType", "baseColour"), k: int = 10
) -> pd.Series:
    """How much a map's neighbourhoods share labels: for each column, the share of each
    point's ``k`` nearest points on the map (x, y) that have its value, averaged."""
    from sklearn.neighbors import NearestNeighbors

    if not 1 <= k < len(frame):
        raise RecsysError(f"k={k}: need 1 <= k < {len(frame)} (the points on the map)")
    xy = frame[["x", "y"]].to_numpy(np.float64)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(xy).kneighbors(xy)
    idx = idx[:, 1:]  # each point's own row comes first (ties with a twin aside)
    out = {}
    for column in columns:
        values = frame[column].astype(str).to_numpy()
        out[column] = float(np.mean(values[idx] == values[:, None]))
    return pd.Series(out, name=f"same label among {k} map neighbours")


def projection_frame(embeddings: Embeddings, coords: np.ndarray, meta=None) -> pd.DataFrame:
    """Ids, ``x``, ``y`` and the metadata columns, one row per item, indexed by id."""
    meta = embeddings.meta if meta is None else meta
    index = pd.Index(embeddings.ids, name="id")
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]}, index=index)
    return frame.join(meta.reindex(embeddings.ids))


def _project(embeddings, method: str, cache, seed: int) -> np.ndarray:
    if method == "umap":
        return umap_projection(embeddings, cache, seed=seed)
    if method == "pca":
        return pca_projection(embeddings, seed)[0]
    raise RecsysError(f"method must be 'umap' or 'pca', got {method!r}")


def store_map(store, method: str = "umap", seed: int = 0) -> pd.DataFrame:
    """:func:`projection_frame` of any store's vectors (a MongoStore by URI alone too), by
    ``"umap"`` (cached under the cache folder, keyed by the vectors) or ``"pca"``."""
    cache = settings.cache_dir() / "umap" if method == "umap" else None
    return projection_frame(store, _project(store, method, cache, seed), store.meta)


def latent_map(model, catalog=None, method: str = "umap", seed: int = 0) -> pd.DataFrame:
    """:func:`projection_frame` of a model's catalogue embeddings, by ``"umap"`` or ``"pca"``."""
    model = load_model(model)
    emb = embed_catalog(model, catalog)
    return projection_frame(emb, _project(emb, method, model, seed))
