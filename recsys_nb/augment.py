"""Stage 1, data: random augmentations of training images (flips, shifts, crops, tones, masks).

The training loop (``train._Augmented``) draws them afresh for every batch; "tone" and
"mask" change the model's input only, so the reconstruction target stays the clean image.
"""

from __future__ import annotations

import numpy as np

from .errors import RecsysError

AUGMENTATIONS = ("flip", "shift", "crop", "tone", "mask")
# Applied to the model's input only: the reconstruction target stays the clean image.
INPUT_ONLY_AUGMENTATIONS = ("tone", "mask")
TONE_GAMMA = 2.5  # "tone": gamma drawn log-uniformly in [1/2.5, 2.5]
MASK_GRID, MASK_RATIO = 8, 0.5  # "mask": half of an 8 x 8 grid of blocks whited out
CROP_SCALE = 0.7  # "crop": a window of 70-100% of the height and width, zoomed to full size


def augment_images(images: np.ndarray, kinds, rng: np.random.Generator) -> np.ndarray:
    """A randomly augmented copy of NHWC images in [0, 1] (training only).

    ``"flip"`` mirrors half of the images left-right; ``"shift"`` moves each image by up
    to 1/16 of its height and width, filling with white (the product photos' background).
    ``"crop"`` zooms each image into a random window of 70-100% of its height and width
    (the same share of both, so the aspect ratio stays; bilinear).
    ``"tone"`` raises each image (each channel of an RGB one) to a random gamma: a garment
    gets lighter, darker or (RGB) another hue, while black and the white background stay.
    ``"mask"`` whites out a random half of the blocks of an 8 x 8 grid (masked image
    modelling): to rebuild the hidden parts the model has to know what kind of item it
    sees. Training uses "tone" and "mask" on the input only (a denoising autoencoder):
    the target stays the clean image.
    """
    kinds = set(kinds)
    unknown = kinds - set(AUGMENTATIONS)
    if unknown:
        raise RecsysError(
            f"unknown augmentation(s) {', '.join(sorted(unknown))}: use {', '.join(AUGMENTATIONS)}"
        )
    out = np.array(images, dtype=np.float32, copy=True)
    n, height, width = out.shape[:3]
    if "flip" in kinds:
        flip = rng.random(n) < 0.5
        out[flip] = out[flip, :, ::-1]
    if "shift" in kinds:
        dy_max, dx_max = max(1, height // 16), max(1, width // 16)
        padded = np.pad(
            out, ((0, 0), (dy_max, dy_max), (dx_max, dx_max), (0, 0)), constant_values=1.0
        )
        dy = rng.integers(0, 2 * dy_max + 1, n)
        dx = rng.integers(0, 2 * dx_max + 1, n)
        for i in range(n):
            out[i] = padded[i, dy[i] : dy[i] + height, dx[i] : dx[i] + width]
    if "crop" in kinds:
        out = _random_crop(out, rng)
    if "tone" in kinds:
        gamma = np.exp(rng.uniform(-1, 1, (n, 1, 1, out.shape[3])) * np.log(TONE_GAMMA))
        out = np.power(out, gamma.astype(np.float32))
    if "mask" in kinds:
        rows, cols = -(-height // MASK_GRID), -(-width // MASK_GRID)
        hidden = rng.random((n, MASK_GRID, MASK_GRID)) < MASK_RATIO
        hidden = np.repeat(np.repeat(hidden, rows, axis=1), cols, axis=2)[:, :height, :width]
        out = np.where(hidden[..., None], np.float32(1.0), out)
    return out


def _random_crop(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image zoomed into its own random window (bilinear, vectorised over the batch)."""
    n, height, width = images.shape[:3]
    scale = rng.uniform(CROP_SCALE, 1.0, n)
    top = rng.uniform(0, 1, n) * (1 - scale) * (height - 1)
    left = rng.uniform(0, 1, n) * (1 - scale) * (width - 1)
    ys = top[:, None] + np.linspace(0, 1, height)[None] * scale[:, None] * (height - 1)
    xs = left[:, None] + np.linspace(0, 1, width)[None] * scale[:, None] * (width - 1)
    y0 = np.minimum(ys.astype(int), height - 2) if height > 1 else np.zeros_like(ys, int)
    x0 = np.minimum(xs.astype(int), width - 2) if width > 1 else np.zeros_like(xs, int)
    wy = (ys - y0)[:, :, None, None].astype(np.float32)
    wx = (xs - x0)[:, None, :, None].astype(np.float32)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    rows = np.arange(n)[:, None, None]

    def at(y, x):
        return images[rows, y[:, :, None], x[:, None, :]]

    top_row = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom_row = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top_row * (1 - wy) + bottom_row * wy
