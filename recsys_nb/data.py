"""Stage 1, data: Fashion-MNIST, product catalogues and plain image folders.

Every loader returns a :class:`Dataset`: images as float32 NHWC in [0, 1], one
integer id per image, and a metadata table (labels, names) indexed by id.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from . import settings

# re-exported: the augmentations moved to augment.py, recsys_nb.data still names them
from .augment import AUGMENTATIONS, INPUT_ONLY_AUGMENTATIONS, augment_images  # noqa: F401
from .errors import RecsysError

PRODUCT_IMAGE_SIZE = (64, 48)  # height, width: the 60x80 photos keep their 3:4 aspect
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
WHITE = 255  # product photos sit on white: pad with white, never black
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B

HOW_TO_GET_DATA = (
    "Set RECSYS_NB_DATA to a folder holding 'fashion-mnist/' (the four IDX .gz files) and/or "
    "'fashion-products/' (styles.csv + images/<id>.jpg). Fashion-MNIST: "
    "`python -c 'import keras; keras.datasets.fashion_mnist.load_data()'` (Keras cache "
    "~/.keras/datasets/fashion-mnist/) or `apt-get install dataset-fashion-mnist` "
    "(/usr/share/datasets/fashion-mnist/); product photos: Kaggle dataset "
    "paramaggarwal/fashion-product-images-small (styles.csv + images/)."
)


@dataclass
class Dataset:
    """Images (float32 NHWC in [0, 1]) with their ids and a metadata table indexed by id."""

    name: str
    images: np.ndarray
    ids: np.ndarray
    meta: pd.DataFrame
    source: str = ""
    preprocessing: dict = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask_or_index) -> Dataset:
        """The same dataset restricted to a boolean mask or an index array."""
        ids = self.ids[mask_or_index]
        return Dataset(
            self.name,
            self.images[mask_or_index],
            ids,
            self.meta.loc[ids],
            self.source,
            self.preprocessing,
            self.skipped,
        )

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Deterministic (train, validation) split by id; see :func:`is_validation`."""
        val = is_validation(self.ids, val_fraction, seed)
        return self.subset(~val), self.subset(val)


def data_root() -> Path:
    """The data root: ``$RECSYS_NB_DATA``, else ``../shared/data`` beside the checkout."""
    return settings.data_root()


def is_validation(ids, val_fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """True for ids in the validation split.

    Each id's side is fixed by a seeded hash of the id alone, so adding or removing
    other items never moves an item between train and validation.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise RecsysError(f"val_fraction must be in [0, 1), got {val_fraction}")
    digests = [hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest() for i in ids]
    u = np.array([int.from_bytes(d, "big") for d in digests], dtype=np.float64) / 2.0**64
    return u < val_fraction


# --- Fashion-MNIST ---------------------------------------------------------------


def _fashion_mnist_dirs() -> list[Path]:
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return [
        data_root() / "fashion-mnist",
        keras_home / "datasets" / "fashion-mnist",
        Path("/usr/share/datasets/fashion-mnist"),
    ]


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
            if zero != 0 or dtype_code != 0x08:
                raise RecsysError(f"{path} is not an IDX file of unsigned bytes")
            shape = struct.unpack(f">{ndim}I", f.read(4 * ndim))
            data = np.frombuffer(f.read(), dtype=np.uint8)
    except (OSError, EOFError, struct.error) as exc:
        raise RecsysError(f"cannot read IDX file {path}: {exc}") from exc
    if data.size != int(np.prod(shape)):
        raise RecsysError(f"{path} is truncated: expected {np.prod(shape)} values, got {data.size}")
    return data.reshape(shape)


def load_fashion_mnist(split: str = "train") -> Dataset:
    """Fashion-MNIST ``train`` (60,000) or ``test`` (10,000) as (n, 28, 28, 1) float32.

    Looked for in ``$RECSYS_NB_DATA/fashion-mnist``, Keras' dataset cache and
    Debian's ``dataset-fashion-mnist`` package, in that order.
    """
    if split not in FASHION_MNIST_FILES:
        raise RecsysError(f"unknown Fashion-MNIST split {split!r}: use 'train' or 'test'")
    image_file, label_file = FASHION_MNIST_FILES[split]
    folder = next((d for d in _fashion_mnist_dirs() if (d / image_file).is_file()), None)
    if folder is None:
        looked = ", ".join(str(d) for d in _fashion_mnist_dirs())
        raise RecsysError(f"Fashion-MNIST not found (looked in {looked}). {HOW_TO_GET_DATA}")
    images = read_idx(folder / image_file)
    labels = read_idx(folder / label_file)
    ids = np.arange(len(labels), dtype=np.int64)
    meta = pd.DataFrame(
        {"label": np.asarray(FASHION_MNIST_CLASSES)[labels], "label_index": labels}, index=ids
    )
    meta.index.name = "id"
    return Dataset(
        name="fashion-mnist",
        images=(images[..., None].astype(np.float32) / 255.0),
        ids=ids,
        meta=meta,
        source=f"{folder} ({split})",
        preprocessing={"scale": "x / 255", "size": [28, 28], "channels": 1},
    )


# --- image files -------------------------------------------------------------------


def load_image(path, size: tuple[int, int] = PRODUCT_IMAGE_SIZE, channels: int = 3) -> np.ndarray:
    """One image file as uint8 (height, width, channels).

    Greyscale files become RGB (and colour files grey when ``channels == 1``). An
    image of another aspect ratio is padded with white to the target aspect, centred,
    then resized, so that nothing is cropped away.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if channels == 3 else "L")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise RecsysError(f"cannot read image {path}: {exc}") from exc
    return _fit(img, size)


def image_from_array(array: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """An in-memory image (uint8 or float in [0, 1], HW or HWC) preprocessed like a file."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise RecsysError(
            f"expected an image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}"
        )
    img = Image.fromarray(a).convert("RGB" if channels == 3 else "L")
    return _fit(img, size)


def _fit(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Resize keeping the aspect ratio, centred on white (``PIL.ImageOps.pad``)."""
    height, width = size
    if img.size != (width, height):
        fill = WHITE if img.mode == "L" else (WHITE,) * 3
        img = ImageOps.pad(img, (width, height), Image.Resampling.BILINEAR, color=fill)
    a = np.asarray(img, dtype=np.uint8)
    return a[..., None] if a.ndim == 2 else a


def _load_files(
    paths: list, size: tuple[int, int], channels: int, skip_bad: bool
) -> tuple[np.ndarray, list[int], list[str]]:
    out = np.empty((len(paths), *size, channels), dtype=np.uint8)
    kept, skipped = [], []
    for i, path in enumerate(paths):
        try:
            out[len(kept)] = load_image(path, size, channels)
        except RecsysError as exc:
            if not skip_bad:
                raise RecsysError(
                    f"{exc} (pass skip_bad=True / --skip-bad to skip such files)"
                ) from exc
            skipped.append(str(path))
            continue
        kept.append(i)
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable image(s), first: {skipped[0]}", stacklevel=3
        )
    return out[: len(kept)], kept, skipped


def _cache_path(folder: Path, size, channels: int, signature: str) -> Path:
    key = hashlib.sha1(f"{folder.resolve()}|{size}|{channels}|{signature}".encode()).hexdigest()[
        :16
    ]
    return settings.cache_dir() / f"{folder.name}-{size[0]}x{size[1]}x{channels}-{key}.npz"


def load_catalog(
    folder=None,
    size: tuple[int, int] = PRODUCT_IMAGE_SIZE,
    channels: int = 3,
    skip_bad: bool = False,
    limit: int | None = None,
    cache: bool = True,
) -> Dataset:
    """A product catalogue folder: ``styles.csv`` plus ``images/<id>.jpg``.

    ``folder`` defaults to ``$RECSYS_NB_DATA/fashion-products``. Rows whose image file
    is missing are left out with a warning; an unreadable image raises an error naming
    the file, or is skipped with a warning when ``skip_bad`` is true. ``limit`` keeps
    the first ``limit`` rows (quick mode). Decoded images are cached under ``data/cache``.
    """
    folder = Path(folder) if folder is not None else data_root() / "fashion-products"
    styles = folder / "styles.csv"
    if not styles.is_file():
        if folder.is_dir() and not (folder / "images").is_dir():
            raise RecsysError(
                f"{folder} has no styles.csv: a catalogue folder holds styles.csv and "
                "images/<id>.jpg; for a plain folder of images use load_image_folder()"
            )
        raise RecsysError(f"product catalogue not found at {folder}. {HOW_TO_GET_DATA}")
    try:
        meta = pd.read_csv(styles, dtype={"id": np.int64}, keep_default_na=False, na_values=[])
    except (ValueError, pd.errors.ParserError) as exc:
        raise RecsysError(f"cannot read {styles}: {exc}") from exc
    if "id" not in meta.columns:
        raise RecsysError(f"{styles} has no 'id' column (columns: {', '.join(meta.columns)})")
    if meta["id"].duplicated().any():
        dup = meta.loc[meta["id"].duplicated(), "id"].iloc[0]
        raise RecsysError(f"{styles} lists id {dup} more than once")
    if limit is not None:
        meta = meta.iloc[:limit]
    # One directory listing instead of a stat per row: a catalogue is reopened on every
    # recommendation, and its pixels usually come from the cache below.
    image_dir = folder / "images"
    prefix = os.path.join(str(image_dir), "")

    def image_path(item_id) -> str:
        return f"{prefix}{item_id}.jpg"

    files = set(os.listdir(image_dir)) if image_dir.is_dir() else set()
    present = np.array([f"{i}.jpg" in files for i in meta["id"]], dtype=bool)
    if not present.all():
        missing = meta["id"].to_numpy()[~present]
        warnings.warn(
            f"{len(missing)} catalogue row(s) have no image in {image_dir} and are left "
            f"out (first id: {missing[0]})",
            stacklevel=2,
        )
        meta = meta[present]

    stat = styles.stat()
    signature = f"{stat.st_size}-{stat.st_mtime_ns}-{len(meta)}-{skip_bad}"
    cache_file = _cache_path(folder, size, channels, signature)
    if cache and cache_file.is_file():
        with np.load(cache_file) as npz:
            pixels, kept_ids = npz["pixels"], npz["ids"]
        kept_set = set(kept_ids.tolist())
        skipped = [image_path(i) for i in meta["id"] if i not in kept_set]
    else:
        paths = [image_path(i) for i in meta["id"]]
        pixels, kept, skipped = _load_files(paths, size, channels, skip_bad)
        kept_ids = meta["id"].to_numpy()[kept]
        if cache:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp.npz")
            np.savez(tmp, pixels=pixels, ids=kept_ids)
            tmp.replace(cache_file)
    meta = meta.set_index("id").loc[kept_ids]
    meta["image_path"] = [image_path(i) for i in kept_ids.tolist()]
    return Dataset(
        name=folder.name,
        images=pixels.astype(np.float32) / 255.0,
        ids=np.asarray(kept_ids, dtype=np.int64),
        meta=meta,
        source=str(folder),
        preprocessing=_preprocessing(size, channels),
        skipped=skipped,
    )


def load_image_folder(
    folder, size: tuple[int, int] = PRODUCT_IMAGE_SIZE, channels: int = 3, skip_bad: bool = False
) -> Dataset:
    """Any folder of image files, no labels; ids are 0..n-1 in sorted file-name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecsysError(f"image folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise RecsysError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    pixels, kept, skipped = _load_files(paths, size, channels, skip_bad)
    ids = np.arange(len(kept), dtype=np.int64)
    meta = pd.DataFrame(
        {"name": [paths[i].stem for i in kept], "image_path": [str(paths[i]) for i in kept]},
        index=pd.Index(ids, name="id"),
    )
    return Dataset(
        name=folder.name,
        images=pixels.astype(np.float32) / 255.0,
        ids=ids,
        meta=meta,
        source=str(folder),
        preprocessing=_preprocessing(size, channels),
        skipped=skipped,
    )


def _preprocessing(size, channels: int) -> dict:
    return {
        "scale": "x / 255",
        "size": list(size),
        "channels": channels,
        "fit": "ImageOps.pad: bilinear resize, centred on white",
    }


def load_dataset(name_or_path, split: str | None = None, **kwargs) -> Dataset:
    """``"fashion-mnist"``, ``"products"`` (the default catalogue) or a folder path."""
    if name_or_path == "fashion-mnist":
        return load_fashion_mnist(split or "train")
    if name_or_path in ("products", "fashion-products", None):
        return load_catalog(None, **kwargs)
    folder = Path(name_or_path)
    if (folder / "styles.csv").is_file():
        return load_catalog(folder, **kwargs)
    if folder.is_dir():
        return load_image_folder(folder, **{k: v for k, v in kwargs.items() if k != "limit"})
    raise RecsysError(
        f"unknown dataset {name_or_path!r}: use 'fashion-mnist', 'products' or a folder "
        f"(catalogue with styles.csv, or plain images). {HOW_TO_GET_DATA}"
    )
