"""An image file dropped on (or chosen in) the widget: size-checked, then decoded.

The file is refused, with one line saying why, when it has more than
:data:`~recsys_nb.widget.contract.MAX_UPLOAD_BYTES` bytes (before anything is parsed) or
more than :data:`~recsys_nb.widget.contract.MAX_UPLOAD_PIXELS` pixels (read from its
header: PIL's ``Image.open`` is lazy, nothing is decoded before ``load``). Pillow's own
decompression-bomb check is refused the same way.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import RecsysError
from .contract import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS


class ImageTooLargeError(RecsysError):
    """An image file over the widget's size limits (bytes or pixels)."""


def _mb(n: int) -> str:
    """Megabytes (MiB), rounded up to a tenth: a file over the limit never reads as it."""
    return f"{math.ceil(n * 10 / 2**20) / 10:.1f}".removesuffix(".0")


def check_upload_bytes(size: int) -> None:
    """Refuse a file of ``size`` bytes over :data:`MAX_UPLOAD_BYTES`."""
    if size > MAX_UPLOAD_BYTES:
        raise ImageTooLargeError(
            f"image file too large: {_mb(size)} MB (at most {_mb(MAX_UPLOAD_BYTES)} MB)"
        )


def check_upload_pixels(width: int, height: int) -> None:
    """Refuse a ``width`` x ``height`` picture over :data:`MAX_UPLOAD_PIXELS`."""
    if width * height > MAX_UPLOAD_PIXELS:
        raise ImageTooLargeError(
            f"image too large: {width} x {height} pixels ({width * height / 1e6:.0f} "
            f"megapixels; at most {MAX_UPLOAD_PIXELS / 1e6:g})"
        )


def decode_image(data: bytes) -> np.ndarray:
    """An image file's bytes as an RGB array, within the size limits (else
    :class:`ImageTooLargeError`); an unreadable file is a :class:`RecsysError`."""
    check_upload_bytes(len(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                check_upload_pixels(*img.size)  # from the header: nothing decoded yet
                return np.asarray(img.convert("RGB"))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image too large: {exc}".split(", could be")[0]) from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise RecsysError(f"not an image file the widget can read: {exc}") from exc
