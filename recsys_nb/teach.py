"""Helpers of the teaching notebooks (08-10): a small conv autoencoder, noise and PSNR,
reconstruction errors, PCA as the linear baseline, walks through a latent space, holes in it,
and matplotlib figures. Images are float in [0, 1], NHWC (Fashion-MNIST: (n, 28, 28, 1)).
"""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers

from .layers import DownConv, OutConv, UpConv

NOISE_KINDS = ("gaussian", "salt_pepper")


def small_autoencoder(
    latent_dim: int = 32,
    filters=(16, 32),
    input_shape=(28, 28, 1),
    learning_rate: float = 3e-3,
    name: str = "autoencoder",
) -> keras.Model:
    """The small conv autoencoder of notebook 08, compiled (Adam, binary cross-entropy),
    with ``encoder`` and ``decoder`` sub-models.

    ``DownConv``, ``UpConv`` and ``OutConv`` compute exactly ``Conv2D(f, 3, strides=2)``,
    ``Conv2DTranspose(f, 3, strides=2)`` and ``Conv2D(f, 3)`` ("same" padding), as matrix
    products that XLA trains about 5x faster on a CPU (:mod:`recsys_nb.layers`).
    """
    height, width, channels = input_shape
    small = (height // 4, width // 4, filters[1])
    image = keras.Input(input_shape, name="image")
    x = DownConv(filters[0], activation="relu")(image)
    x = DownConv(filters[1], activation="relu")(x)
    x = layers.Flatten()(x)
    code = layers.Dense(latent_dim, name="code")(x)
    encoder = keras.Model(image, code, name="encoder")

    code_in = keras.Input((latent_dim,), name="code")
    y = layers.Dense(int(np.prod(small)), activation="relu")(code_in)
    y = layers.Reshape(small)(y)
    y = UpConv(filters[1], activation="relu")(y)
    y = UpConv(filters[0], activation="relu")(y)
    pixels = OutConv(channels, activation="sigmoid")(y)
    decoder = keras.Model(code_in, pixels, name="decoder")

    model = keras.Model(image, decoder(encoder(image)), name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    return model


def estimate_fit_seconds(
    build, images, epochs: int, batch_size: int = 64, validation=None, steps: int = 5
) -> float:
    """Seconds ``fit`` of a ``build()`` model on ``images`` (``validation`` after each epoch)
    will take, from a throwaway copy: it compiles the train and test steps (XLA's cache keeps
    them for the real model), then ``steps`` batches of each are timed and scaled up."""
    model = build()
    batch = np.asarray(images[:batch_size])
    model.train_on_batch(batch, batch)  # compiles the train step
    if validation is not None:
        model.test_on_batch(batch, batch)  # compiles the test step
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(batch, batch)
    seconds = (time.perf_counter() - started) / steps * np.ceil(len(images) / batch_size)
    if validation is not None:
        started = time.perf_counter()
        for _ in range(steps):
            model.test_on_batch(batch, batch)
        per_batch = (time.perf_counter() - started) / steps
        seconds += per_batch * np.ceil(len(validation) / batch_size)
    return float(seconds * epochs)


def reconstruct(model, images, batch_size: int = 500) -> np.ndarray:
    """``model``'s reconstructions of ``images`` (float32, the same shape)."""
    return np.asarray(model.predict(np.asarray(images), batch_size=batch_size, verbose=0))


def mse(images, others) -> np.ndarray:
    """Mean squared error per image between two equally shaped stacks of images."""
    diff = np.asarray(images, np.float64) - np.asarray(others, np.float64)
    return (diff**2).reshape(len(diff), -1).mean(axis=1)


def reconstruction_errors(model, images, batch_size: int = 500) -> np.ndarray:
    """Per-image mean squared error of ``model``'s reconstruction (the anomaly score)."""
    return mse(images, reconstruct(model, images, batch_size))


def pca_reconstructions(train_images, images, n_components: int, seed: int = 0):
    """``images`` projected on the first ``n_components`` principal components of
    ``train_images`` and back (clipped to [0, 1]): the linear autoencoder's answer."""
    from sklearn.decomposition import PCA

    flat = np.asarray(train_images, dtype=np.float32).reshape(len(train_images), -1)
    pca = PCA(n_components, random_state=seed).fit(flat)
    x = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    back = pca.inverse_transform(pca.transform(x))
    return np.clip(back, 0.0, 1.0).reshape(np.shape(images)).astype(np.float32)


def psnr(clean, other, max_value: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per image, ``10 log10(max^2 / mse)`` (inf when equal)."""
    err = mse(clean, other)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_value**2 / err)


def add_noise(images, kind: str = "gaussian", amount: float = 0.3, seed: int = 0) -> np.ndarray:
    """A noisy copy of ``images``, clipped to [0, 1]: ``"gaussian"`` adds noise of standard
    deviation ``amount``; ``"salt_pepper"`` sets a fraction ``amount`` of the pixels to 0 or
    1 (half each). Seeded: the same arguments give the same noise."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise {kind!r}: use one of {', '.join(NOISE_KINDS)}")
    rng = np.random.default_rng(seed)
    x = np.asarray(images, dtype=np.float32)
    if kind == "gaussian":
        noisy = x + rng.normal(0.0, amount, x.shape).astype(np.float32)
    else:
        noisy = x.copy()
        hit = rng.random(x.shape) < amount
        noisy[hit] = (rng.random(x.shape) < 0.5)[hit]
    return np.clip(noisy, 0.0, 1.0)


def interpolate(decoder, code_a, code_b, steps: int = 8) -> np.ndarray:
    """The straight line from ``code_a`` to ``code_b`` decoded at ``steps`` points."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    codes = (1 - t) * np.asarray(code_a, np.float32) + t * np.asarray(code_b, np.float32)
    return np.asarray(decoder.predict(codes, verbose=0))


def top_variance_dims(codes, k: int = 3) -> np.ndarray:
    """The ``k`` code dimensions with the largest variance over ``codes``, largest first."""
    return np.argsort(np.var(np.asarray(codes), axis=0))[::-1][:k]


def traverse(decoder, code, dims, codes, steps: int = 7, spread: float = 2.0) -> np.ndarray:
    """Per dimension in ``dims``, ``code`` decoded with that dimension moved from -``spread``
    to +``spread`` standard deviations of ``codes`` around their mean: (len(dims), steps, ...)."""
    codes = np.asarray(codes, np.float32)
    mean, std = codes.mean(axis=0), codes.std(axis=0)
    offsets = np.linspace(-spread, spread, steps, dtype=np.float32)
    walks = np.tile(np.asarray(code, np.float32), (len(dims), steps, 1))
    for row, d in enumerate(dims):
        walks[row, :, d] = mean[d] + offsets * std[d]
    flat = walks.reshape(-1, codes.shape[1])
    out = np.asarray(decoder.predict(flat, verbose=0))
    return out.reshape(len(dims), steps, *out.shape[1:])


def grid_codes(low, high, n: int = 12) -> np.ndarray:
    """A regular ``n`` x ``n`` grid of 2-d codes from ``low`` to ``high`` (each (x, y)),
    row by row from the top (largest y) down, as (n * n, 2)."""
    xs = np.linspace(low[0], high[0], n, dtype=np.float32)
    ys = np.linspace(high[1], low[1], n, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def manifold_grid(decoder, low, high, n: int = 12) -> np.ndarray:
    """The decoder's images of :func:`grid_codes` tiled into one (n * h, n * w) picture."""
    return mosaic(np.asarray(decoder.predict(grid_codes(low, high, n), verbose=0)), n)


def mosaic(images, ncols: int) -> np.ndarray:
    """Images (n, h, w[, 1]) tiled row by row into one grey (rows * h, ncols * w) array."""
    a = np.asarray(images, dtype=np.float32).reshape(len(images), *np.shape(images)[1:3])
    n, h, w = a.shape
    rows = -(-n // ncols)
    pad = np.zeros((rows * ncols - n, h, w), np.float32)
    a = np.concatenate([a, pad]).reshape(rows, ncols, h, w)
    return a.transpose(0, 2, 1, 3).reshape(rows * h, ncols * w)


def nearest_distance(samples, reference, chunk: int = 1000) -> np.ndarray:
    """Per sample, the root-mean-square pixel distance to its nearest ``reference`` image."""
    s = np.asarray(samples, np.float32).reshape(len(samples), -1)
    r = np.asarray(reference, np.float32).reshape(len(reference), -1)
    r_sq = (r * r).sum(axis=1)
    best = np.empty(len(s), np.float32)
    for i in range(0, len(s), chunk):
        part = s[i : i + chunk]
        d2 = (part * part).sum(axis=1)[:, None] - 2.0 * part @ r.T + r_sq[None, :]
        best[i : i + chunk] = d2.min(axis=1)
    return np.sqrt(np.maximum(best, 0.0) / s.shape[1])


def image_rows(rows: dict, title: str | None = None, cell: float = 0.8, captions=None):
    """A matplotlib figure with one row of pictures per entry of ``rows`` (label: images),
    the label on the left; ``captions`` (one per column) under the last row."""
    import matplotlib.pyplot as plt

    labels = list(rows)
    ncols = max(len(rows[k]) for k in labels)
    fig, axes = plt.subplots(
        len(labels), 1, figsize=(cell * ncols + 1.2, cell * len(labels) + 0.4), squeeze=False
    )
    for ax, label in zip(axes[:, 0], labels, strict=True):
        ax.imshow(mosaic(rows[label], ncols), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    if captions is not None:
        width = np.shape(rows[labels[-1]])[2]
        axes[-1, 0].set_xticks(np.arange(len(captions)) * width + width / 2 - 0.5)
        axes[-1, 0].set_xticklabels(captions, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def loss_figure(histories: dict, title: str = "binary cross-entropy per pixel"):
    """Training and validation loss per epoch of each ``keras.callbacks.History``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, history in histories.items():
        epochs = np.arange(1, len(history.history["loss"]) + 1)
        line = ax.plot(epochs, history.history["loss"], "o-", label=f"{name} train")[0]
        if "val_loss" in history.history:
            ax.plot(epochs, history.history["val_loss"], "s--", color=line.get_color(),
                    label=f"{name} validation")  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def histogram_figure(values: dict, bins: int = 50, xlabel: str = "", marks: dict | None = None):
    """Overlaid histograms (density) of each named array; ``marks`` (label: x) as lines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    edges = np.histogram_bin_edges(np.concatenate([np.ravel(v) for v in values.values()]), bins)
    for name, v in values.items():
        ax.hist(np.ravel(v), bins=edges, density=True, alpha=0.55, label=f"{name} ({len(v):,})")
    for name, x in (marks or {}).items():
        ax.axvline(x, color="black", linestyle=":", linewidth=1, label=name)
    ax.set(xlabel=xlabel, ylabel="density")
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def latent_map_figure(maps: dict, labels, classes, size: float = 4.2):
    """Side by side, one scatter per entry of ``maps`` (title: (n, 2) codes), coloured by
    ``labels`` (one of ``classes`` per code)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(maps), figsize=(size * len(maps) + 1.8, size), squeeze=False, dpi=80
    )
    colours = plt.get_cmap("tab10")
    labels = np.asarray(labels)
    for ax, (title, codes) in zip(axes[0], maps.items(), strict=True):
        for i, name in enumerate(classes):
            pick = labels == name
            ax.scatter(*np.asarray(codes)[pick].T, s=3, color=colours(i % 10), label=name)
        ax.set(title=title, xlabel="code[0]", ylabel="code[1]")
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=4, fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def pictures_figure(pictures: dict, size: float = 3.6):
    """Grey pictures (title: 2-d array in [0, 1]) side by side, e.g. manifold grids."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(pictures), figsize=(size * len(pictures), size + 0.3))
    for ax, (title, picture) in zip(np.atleast_1d(axes), pictures.items(), strict=True):
        ax.imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def hole_fraction(codes, reference, quantile: float = 0.99) -> float:
    """The fraction of ``codes`` that lie in a hole of ``reference`` (e.g. the codes of real
    pictures): farther from every reference code than ``quantile`` of the reference codes
    are from their nearest other reference code."""
    from sklearn.neighbors import NearestNeighbors

    reference = np.asarray(reference, np.float32)
    index = NearestNeighbors(n_neighbors=2).fit(reference)
    radius = np.quantile(index.kneighbors(reference)[0][:, 1], quantile)
    return float((index.kneighbors(np.asarray(codes, np.float32), 1)[0][:, 0] > radius).mean())
