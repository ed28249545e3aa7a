"""Pictures: uint8 conversion, JPEG/PNG bytes and data URIs, thumbnails, image grids."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from ..data import Dataset, load_image
from ..errors import RecsysError

THUMB_SIZE = (80, 60)  # height, width of thumbnails (the photos are 60x80)


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
        from ..protocol import as_id, decode_picture

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


def _auto_scale(pics: np.ndarray) -> int:
    return 2 if pics.shape[1] < 50 else 1
