"""Stage 2, model: a symmetric convolutional autoencoder in Keras 3 (JAX backend).

Encoder: stride-2 3x3 convolutions (one per entry of ``filters``), flatten, a linear
``Dense(latent_dim)``. Decoder: the mirror image, ``Dense`` back to the smallest
feature map, stride-2 3x3 transposed convolutions, and a 3x3 sigmoid convolution to
the image's channels. The encoder and decoder are named sub-models, so
``model.encoder`` works on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .errors import RecsysError
from .layers import DownConv, OutConv, UpConv

LOSSES = {"bce": "binary_crossentropy", "mse": "mean_squared_error"}
DEFAULT_LATENT_DIM = 32
DEFAULT_FILTERS = (32, 64)


def build_autoencoder(
    input_shape=(28, 28, 1),
    latent_dim: int = DEFAULT_LATENT_DIM,
    filters=DEFAULT_FILTERS,
    loss: str = "bce",
    learning_rate: float = 1e-3,
) -> keras.Model:
    """A compiled autoencoder with ``encoder`` and ``decoder`` sub-models (Adam)."""
    height, width, channels = (int(v) for v in input_shape)
    filters = tuple(int(f) for f in filters)
    scale = 2 ** len(filters)
    if loss not in LOSSES:
        raise RecsysError(f"unknown loss {loss!r}: use one of {', '.join(LOSSES)}")
    if channels not in (1, 3):
        raise RecsysError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not filters or height % scale or width % scale:
        raise RecsysError(
            f"input {height}x{width} must be divisible by 2**len(filters) = {scale} "
            f"(filters={filters}); pick another image size or fewer filters"
        )

    image = keras.Input((height, width, channels), name="image")
    x = image
    for f in filters:
        x = DownConv(f)(x)
    x = layers.Flatten()(x)
    latent = layers.Dense(latent_dim, name="latent")(x)
    encoder = keras.Model(image, latent, name="encoder")

    code = keras.Input((latent_dim,), name="code")
    grid = (height // scale, width // scale, filters[-1])
    y = layers.Dense(int(np.prod(grid)), activation="relu")(code)
    y = layers.Reshape(grid)(y)
    for f in reversed(filters):
        y = UpConv(f)(y)
    reconstruction = OutConv(channels)(y)
    decoder = keras.Model(code, reconstruction, name="decoder")

    autoencoder = keras.Model(image, decoder(encoder(image)), name="autoencoder")
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=LOSSES[loss])
    return autoencoder


@dataclass
class TrainedModel:
    """A saved model folder: ``model.keras`` and ``meta.json``."""

    path: Path
    autoencoder: keras.Model
    meta: dict

    @property
    def encoder(self) -> keras.Model:
        return self.autoencoder.get_layer("encoder")

    @property
    def decoder(self) -> keras.Model:
        return self.autoencoder.get_layer("decoder")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.autoencoder.input_shape[1:])

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.output_shape[-1])

    @property
    def name(self) -> str:
        return self.path.name


def save_model(autoencoder: keras.Model, folder, meta: dict) -> Path:
    """Write ``model.keras`` and ``meta.json`` to ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    autoencoder.save(folder / "model.keras")
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return folder


def load_model(folder) -> TrainedModel:
    """Load a model folder written by :func:`save_model` / :func:`recsys_nb.train`."""
    if isinstance(folder, TrainedModel):
        return folder
    folder = Path(folder)
    files = [folder / "model.keras", folder / "meta.json"]
    if not all(f.is_file() for f in files):
        raise RecsysError(
            f"{folder} is not a model folder (it needs model.keras and meta.json); "
            "train one with `recsys-nb train` or `make demo`"
        )
    try:
        autoencoder = keras.saving.load_model(files[0], compile=False)
        meta = json.loads(files[1].read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RecsysError(f"cannot load the model in {folder}: {exc}") from exc
    return TrainedModel(folder, autoencoder, meta)
