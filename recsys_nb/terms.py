"""The autoencoder's training terms beyond the pixel loss, and the colour hint.

:func:`gradient_histograms` and :class:`ShapeLoss` (the HOG loss: the reconstruction's
edges must match the input's), :class:`ViewContrast` and :func:`view_contrast_loss` (two
augmented views of an item should get close codes), :class:`ColourHint` (the decoder is
told the item's colours, so the code need not carry them) and :func:`cosine_distance`
(the distillation head's loss against a teacher's features).
:func:`recsys_nb.model.build_autoencoder` puts them into a model (and re-exports them);
all are Keras-serialisable as ``recsys_nb>Name``, so saved models find them here.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .data import LUMINANCE
from .errors import RecsysError

LOSSES = {"bce": "binary_crossentropy", "mse": "mean_squared_error"}


def gradient_histograms(images, cell: int = 4, bins: int = 9, floor: float = 0.1):
    """Histograms of oriented gradients (HOG) of NHWC images in [0, 1], differentiable.

    The shape descriptor of Dalal and Triggs: each ``cell`` x ``cell`` cell's edge
    strength per orientation (``bins`` unsigned orientations, soft-assigned), and each
    2x2 block of cells L2-normalised, so that a faint outline counts as much as a strong
    one. It looks at the luminance's gradients only (central differences; none on the
    border): colours and tones that keep the edges give about the same histograms.
    ``floor`` keeps blocks of flat background (noise only) near zero. Returns
    ``(batch, blocks_y, blocks_x, 4 * bins)``.
    """
    if images.shape[-1] == 3:  # luminance, as recsys_nb.evaluate.grey
        grey = ops.sum(images * np.array(LUMINANCE, dtype="float32"), axis=-1)
    else:
        grey = images[..., 0]
    height, width = (int(d) // cell * cell for d in grey.shape[1:3])
    pad = [[0, 0], [1, 1], [1, 1]]
    gx = ops.pad(grey[:, 1:-1, 2:] - grey[:, 1:-1, :-2], pad)[:, :height, :width]
    gy = ops.pad(grey[:, 2:, 1:-1] - grey[:, :-2, 1:-1], pad)[:, :height, :width]
    square = gx * gx + gy * gy
    # the doubled angle's cosine and sine: orientation without a direction, no arctan
    soft = square + 1e-4
    cos2, sin2 = (gx * gx - gy * gy) / soft, 2 * gx * gy / soft
    centres = np.arange(bins) * (2 * np.pi / bins)
    similarity = cos2[..., None] * np.cos(centres) + sin2[..., None] * np.sin(centres)
    votes = ops.sqrt(square + 1e-6)[..., None] * ops.relu(similarity) ** 4
    cells = ops.sum(
        ops.reshape(votes, (-1, height // cell, cell, width // cell, cell, bins)), axis=(2, 4)
    )
    blocks = ops.concatenate(
        [cells[:, :-1, :-1], cells[:, :-1, 1:], cells[:, 1:, :-1], cells[:, 1:, 1:]], axis=-1
    )
    return blocks / ops.sqrt(ops.sum(blocks * blocks, axis=-1, keepdims=True) + floor)


@keras.saving.register_keras_serializable(package="recsys_nb")
class ShapeLoss(keras.losses.Loss):
    """Pixel loss (``"bce"`` or ``"mse"``) plus ``hog`` x the mean squared difference
    between the target's and the reconstruction's :func:`gradient_histograms`.

    A pixel loss is dominated by large areas of flat tone; this term asks the
    reconstruction, and so the code, to get the outline and the inner edges right
    (where the toe of a shoe turns, where a collar sits) whatever their contrast.
    """

    def __init__(self, base: str = "bce", hog: float = 1.0, **kwargs):
        super().__init__(name=kwargs.pop("name", "shape_loss"), **kwargs)
        if base not in LOSSES:
            raise RecsysError(f"unknown loss {base!r}: use one of {', '.join(LOSSES)}")
        self.base, self.hog = base, float(hog)

    def call(self, y_true, y_pred):
        pixels = keras.losses.get(LOSSES[self.base])(y_true, y_pred)
        edges = ops.square(gradient_histograms(y_true) - gradient_histograms(y_pred))
        return ops.mean(pixels, axis=(1, 2)) + self.hog * ops.mean(edges, axis=(1, 2, 3))

    def get_config(self):
        return {**super().get_config(), "base": self.base, "hog": self.hog}


@keras.saving.register_keras_serializable(package="recsys_nb")
class ColourHint(keras.layers.Layer):
    """Per-channel histogram of an image's non-white pixels: ``(batch, channels * bins)``.

    With ``colour_hint`` the decoder gets this beside the code. It says which tones and
    colours the item has but nothing about where, so the code no longer has to carry
    colour to rebuild the image and can spend its dimensions on shape. Only the encoder's
    code is the embedding. No gradient flows through it (it is a fixed function of the
    input); pixels whose channels are all >= ``white`` are background and left out.
    """

    def __init__(self, bins: int = 8, white: float = 0.95, **kwargs):
        super().__init__(**kwargs)
        self.bins, self.white = int(bins), float(white)

    def call(self, images):
        images = ops.stop_gradient(images)
        channels = images.shape[-1]
        item = ops.cast(ops.min(images, axis=-1) < self.white, images.dtype)  # (B, H, W)
        bin_index = ops.cast(ops.clip(images * self.bins, 0, self.bins - 1), "int32")
        counts = ops.sum(ops.one_hot(bin_index, self.bins) * item[..., None, None], axis=(1, 2))
        pixels = ops.maximum(ops.sum(item, axis=(1, 2)), 1.0)
        return ops.reshape(counts / pixels[:, None, None], (-1, channels * self.bins))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1] * self.bins)

    def get_config(self):
        return {**super().get_config(), "bins": self.bins, "white": self.white}


@keras.saving.register_keras_serializable(package="recsys_nb")
class ViewContrast(keras.layers.Layer):
    """The codes unchanged; in training, a contrastive loss between two views of each item.

    A training batch holds two randomly augmented views of each of its items, the first
    views in its first half and the second views, in the same order, in the second. The
    added loss (InfoNCE, symmetric, on L2-normalised codes) asks each view's code to be
    closer to its other view's than to any other item's: the code has to keep what the
    augmentations leave alone (the item's outline and structure) rather than what they
    change (its tones, its place, hidden blocks). No labels: the pairs are all it uses.
    ``weight`` scales it against the reconstruction loss; at inference it does nothing.
    """

    code_grads = None  # set by the micro-batched train step: see Autoencoder

    def __init__(self, weight: float = 0.1, temperature: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.weight, self.temperature = float(weight), float(temperature)

    def loss_of(self, codes):
        return self.weight * view_contrast_loss(codes, self.temperature)

    def call(self, codes, training=None):
        if training and self.weight > 0:
            if self.code_grads is None:
                self.add_loss(self.loss_of(codes))
            else:  # a micro-batch: its rows' share of the whole batch's contrast gradient
                self.add_loss(ops.sum(codes * self.code_grads))
        return codes

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "temperature": self.temperature}


def view_contrast_loss(codes, temperature: float = 0.1):
    """Symmetric InfoNCE between the first and second half of ``codes`` (row i <-> n + i)."""
    n = ops.shape(codes)[0] // 2
    z = codes / ops.maximum(ops.norm(codes, axis=-1, keepdims=True), 1e-8)
    logits = ops.matmul(z[:n], ops.transpose(z[n : 2 * n])) / temperature
    pairs = ops.arange(n)
    forward = keras.losses.sparse_categorical_crossentropy(pairs, logits, from_logits=True)
    backward = keras.losses.sparse_categorical_crossentropy(
        pairs, ops.transpose(logits), from_logits=True
    )
    return (ops.mean(forward) + ops.mean(backward)) / 2


@keras.saving.register_keras_serializable(package="recsys_nb")
def cosine_distance(y_true, y_pred):
    """``1 - cos`` between each row of ``y_true`` and ``y_pred`` (0: same direction)."""
    y_true = y_true / ops.sqrt(ops.sum(y_true * y_true, axis=-1, keepdims=True) + 1e-12)
    y_pred = y_pred / ops.sqrt(ops.sum(y_pred * y_pred, axis=-1, keepdims=True) + 1e-12)
    return 1.0 - ops.sum(y_true * y_pred, axis=-1)
