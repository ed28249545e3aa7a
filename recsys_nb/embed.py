"""Stage 4, embed: encode images into L2-normalised float32 vectors.

``embeddings.npz`` in a model folder keeps one catalogue's ids and vectors, so that
recommending does not run the encoder again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .cnn import PretrainedCNN
from .data import Dataset, image_from_array, load_catalog, load_fashion_mnist, load_image
from .errors import RecsysError
from .model import TrainedModel, load_model

EMBEDDINGS_FILE = "embeddings.npz"


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def check_images(model: TrainedModel, images: np.ndarray) -> np.ndarray:
    """``images`` as float32 NHWC if they fit the model's input, else a clear error."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    expected = model.input_shape
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        got = "x".join(map(str, images.shape[1:])) or "scalar"
        raise RecsysError(
            f"image size {got} does not fit the model {model.name!r}, which expects "
            f"{'x'.join(map(str, expected))} (height x width x channels); load images with "
            "the model's preprocessing (recsys_nb.prepare_image)"
        )
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise RecsysError("image values must be in [0, 1]: divide uint8 pixels by 255")
    return images


def fit_latent_transform(codes: np.ndarray, whiten: float = 1.0) -> dict:
    """Centring and (partial) whitening fitted on training codes, as kept in ``meta.json``.

    ``x -> (x - mean) @ U diag(eigenvalue ** (-whiten / 2)) U^T``: ``whiten=0`` only
    centres on the training mean, ``1`` is full (ZCA) whitening, values between shrink
    the dominant directions part of the way.
    """
    codes = np.asarray(codes, dtype=np.float64)
    mean = codes.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(np.cov(codes - mean, rowvar=False))
    floor = max(float(eigenvalues.max()), 1e-12) * 1e-6
    scale = np.maximum(eigenvalues, floor) ** (-float(whiten) / 2)
    return {
        "whiten": float(whiten),
        "fitted_on": f"{len(codes)} training codes",
        "mean": mean.tolist(),
        "matrix": ((vectors * scale) @ vectors.T).tolist(),
    }


def apply_latent_transform(model: TrainedModel, codes: np.ndarray) -> np.ndarray:
    """The encoder's codes with the model's ``latent_transform`` applied (if it has one)."""
    spec = model.meta.get("latent_transform")
    codes = np.asarray(codes, dtype=np.float32)
    if not spec:
        return codes
    mean = np.asarray(spec["mean"], dtype=np.float32)
    matrix = np.asarray(spec["matrix"], dtype=np.float32)
    return (codes - mean) @ matrix


def embed(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Encode NHWC images in [0, 1] to an L2-normalised float32 array ``(n, latent_dim)``.

    A model trained with a latent transform (``meta["latent_transform"]``: centring /
    whitening fitted on its training codes) has it applied before the normalisation,
    so every store, the widget and the evaluation see the same vectors.
    """
    model = load_model(model)
    images = check_images(model, images)
    if len(images) == 0:
        return np.zeros((0, model.latent_dim), dtype=np.float32)
    vectors = model.encoder.predict(images, batch_size=batch_size, verbose=0)
    return l2_normalize(apply_latent_transform(model, vectors))


MAX_UPSCALE = 4  # a smaller picture carries too little detail for the model


def prepare_image(model, image) -> np.ndarray:
    """A file path or an array, preprocessed as the model's training images: (H, W, C) float32.

    Any size is padded (white) to the model's aspect ratio and resized, but a picture
    more than 4 times smaller than the model's input is refused.
    """
    model = load_model(model)
    height, width, channels = model.input_shape
    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as probe:
                w, h = probe.size
        except (OSError, ValueError) as exc:
            raise RecsysError(f"cannot read image {image}: {exc}") from exc
    else:
        h, w = np.asarray(image).shape[:2]
    if h * MAX_UPSCALE < height or w * MAX_UPSCALE < width:
        raise RecsysError(
            f"image size {h}x{w} does not fit the model {model.name!r}: its input is "
            f"{height}x{width}, so use a picture of at least {-(-height // MAX_UPSCALE)}x"
            f"{-(-width // MAX_UPSCALE)} pixels (height x width)"
        )
    return image_pixels(image, (height, width), channels)


def image_pixels(image, size: tuple[int, int], channels: int) -> np.ndarray:
    """A file path or an array at ``size`` (height, width), padded white and resized as a
    catalogue image is: (H, W, C) float32 in [0, 1]."""
    if isinstance(image, (str, Path)):
        pixels = load_image(image, size, channels)
    else:
        pixels = image_from_array(image, size, channels)
    return pixels.astype(np.float32) / 255.0


@dataclass
class Embeddings:
    """Ids, unit vectors and metadata of one catalogue, under one model."""

    model_id: str
    ids: np.ndarray
    vectors: np.ndarray
    meta: pd.DataFrame
    source: str

    def save(self, path) -> Path:
        """Write ids, vectors, model id and source (not the metadata) to an ``.npz`` file."""
        path = Path(path)
        np.savez(
            path, ids=self.ids, vectors=self.vectors, model_id=self.model_id, source=self.source
        )
        return path

    @classmethod
    def load(cls, path, meta: pd.DataFrame | None = None) -> Embeddings:
        with np.load(path, allow_pickle=False) as npz:
            ids, vectors = npz["ids"], npz["vectors"]
            model_id, source = str(npz["model_id"]), str(npz["source"])
        if meta is None:
            meta = pd.DataFrame(index=pd.Index(ids, name="id"))
        return cls(model_id, ids, vectors, meta, source)


def load_items(model: TrainedModel, catalog=None) -> Dataset:
    """The items a model recommends from: ``catalog`` or, by default, what it was trained on.

    For Fashion-MNIST that is the test set (10,000 images never used in training).
    """
    if catalog is None and model.meta.get("dataset") == "fashion-mnist":
        return load_fashion_mnist("test")
    height, width, channels = (
        model.items_shape if isinstance(model, PretrainedCNN) else model.input_shape
    )
    if catalog is None:
        source = model.meta.get("source")
        catalog = source if source and Path(source, "styles.csv").is_file() else None
    return load_catalog(catalog, size=(height, width), channels=channels)


def embed_catalog(model, catalog=None, *, save: bool = True) -> Embeddings:
    """Embed every item of a catalogue (see :func:`load_items`); cached in the model folder.

    The cache is used again only when it belongs to the same model id and source.
    """
    model = load_model(model)
    items = load_items(model, catalog)
    cache = model.path / EMBEDDINGS_FILE
    if cache.is_file():
        cached = Embeddings.load(cache, items.meta)
        if (
            cached.model_id == model.meta.get("model_id")
            and cached.source == items.source
            and np.array_equal(cached.ids, items.ids)
        ):
            return cached
    result = Embeddings(
        model.meta.get("model_id", model.name),
        items.ids,
        # the CNN reads the image files (cached features); a trained model the pixels
        model.embed_items(items)
        if isinstance(model, PretrainedCNN)
        else embed(model, items.images),
        items.meta,
        items.source,
    )
    if save:
        result.save(cache)
    return result
