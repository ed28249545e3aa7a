"""The catalogue as the widget shows it: metadata table, names, labels, facets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import RecsysError

NAME_COLUMNS = ("productDisplayName", "name", "label")
LABEL_COLUMNS = ("gender", "masterCategory", "subCategory", "articleType", "baseColour", "label")
FACET_COLUMNS = ("gender", "masterCategory", "articleType", "baseColour", "label")
TYPE_COLUMNS = ("articleType", "label")
"""The product type that ``same_type`` matches: the first of these the catalogue has."""
MAX_FACET_VALUES = 300


def catalog_meta(store, meta) -> pd.DataFrame:
    """The metadata table: ``meta`` if given, else the store's ``meta`` (ids alone when the
    store has an empty table and ``ids``)."""
    if meta is None:
        meta = getattr(store, "meta", None)
    if not isinstance(meta, pd.DataFrame):
        raise RecsysError(
            "the widget needs the catalogue's metadata: a store with a .meta DataFrame "
            "indexed by id, or meta=..."
        )
    ids = getattr(store, "ids", None)
    if ids is not None and len(meta.columns) == 0 and len(meta) == 0:
        meta = pd.DataFrame(index=pd.Index(ids, name="id"))
    return meta


def read_catalog_table(folder) -> pd.DataFrame:
    """A catalogue folder's styles.csv indexed by id, with image paths (no decoding)."""
    folder = Path(folder)
    try:
        meta = pd.read_csv(folder / "styles.csv", keep_default_na=False, na_values=[])
    except (OSError, ValueError) as exc:
        table = folder / "styles.csv"
        raise RecsysError(f"cannot read the catalogue table {table}: {exc}") from exc
    meta = meta.set_index("id")
    meta["image_path"] = [str(folder / "images" / f"{i}.jpg") for i in meta.index]
    return meta


def names(meta: pd.DataFrame) -> pd.Series:
    """Each product's display name (``item <id>`` when the table has no name column)."""
    for column in NAME_COLUMNS:
        if column in meta.columns:
            return meta[column].astype(str)
    return pd.Series([f"item {i}" for i in meta.index], index=meta.index)


def facets(meta: pd.DataFrame, columns) -> dict:
    """Label -> sorted values, for the columns with 2..:data:`MAX_FACET_VALUES` values."""
    out = {}
    for column in columns:
        if column in meta.columns:
            values = sorted({str(v) for v in meta[column].unique() if str(v)})
            if 1 < len(values) <= MAX_FACET_VALUES:
                out[column] = values
    return out


def type_column(meta: pd.DataFrame) -> str | None:
    """The column ``same_type`` matches (see :data:`TYPE_COLUMNS`), ``None`` if none."""
    return next((c for c in TYPE_COLUMNS if c in meta.columns), None)


def plain(value):
    """A numpy scalar as the Python value JSON takes."""
    return value.item() if isinstance(value, np.generic) else value
