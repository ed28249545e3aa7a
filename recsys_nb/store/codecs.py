"""BSON codecs: float32 vectors as binary vectors (subtype 9), catalogue rows as plain values.

Measured on 100,000 x 32-d vectors (this 2-core VM, best of 3, pymongo 4.20): encoding
row by row with ``Binary.from_vector`` takes 384 ms, one numpy buffer sliced per row
211 ms; decoding with ``Binary.as_vector(return_numpy=True)`` takes 453 ms, joining
the values and viewing them as a strided float32 matrix 7 ms (the former code,
slicing each value before the join, 48 ms). So the bulk paths (:func:`encode_vectors`,
:func:`decode_vectors`) use numpy buffers, and a single vector (a query, a test) goes
through pymongo's own ``from_vector`` / ``as_vector``; both give the same bytes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VECTOR_SUBTYPE = 9
VECTOR_DTYPE_BYTE = 0x27  # BSON binary vector subtype 9, float32
VECTOR_HEADER = bytes([VECTOR_DTYPE_BYTE, 0])


def encode_vector(vector: np.ndarray):
    """A float32 vector as a BSON binary vector (``Binary.from_vector``, dtype float32)."""
    from bson.binary import Binary, BinaryVectorDtype

    return Binary.from_vector(
        np.asarray(vector, dtype="<f4").reshape(-1), BinaryVectorDtype.FLOAT32
    )


def encode_vectors(vectors: np.ndarray) -> list:
    """The rows of a matrix as BSON binary vectors (what :func:`encode_vector` gives each).

    One buffer for all rows (header bytes + little-endian float32 values), then one
    slice a row: 1.8x faster than ``Binary.from_vector`` row by row.
    """
    from bson.binary import Binary

    rows = np.ascontiguousarray(vectors, dtype="<f4")
    if rows.ndim != 2:
        raise ValueError(f"expected a matrix of vectors, got shape {rows.shape}")
    n, dim = rows.shape
    width = len(VECTOR_HEADER) + 4 * dim
    buf = np.empty((n, width), dtype=np.uint8)
    buf[:, : len(VECTOR_HEADER)] = np.frombuffer(VECTOR_HEADER, dtype=np.uint8)
    buf[:, len(VECTOR_HEADER) :] = rows.view(np.uint8).reshape(n, 4 * dim)
    raw = buf.tobytes()
    return [Binary(raw[i * width : (i + 1) * width], VECTOR_SUBTYPE) for i in range(n)]


def decode_vector(value) -> np.ndarray:
    """One stored vector (binary float32 vector or array of numbers) as float32."""
    from bson.binary import Binary

    if isinstance(value, Binary) and value.subtype == VECTOR_SUBTYPE:
        return np.asarray(value.as_vector(return_numpy=True).data, dtype=np.float32)
    if isinstance(value, bytes):
        return np.frombuffer(bytes(value)[2:], "<f4").astype(np.float32)
    return np.asarray(value, dtype=np.float32)


def decode_vectors(values: list, dim: int) -> np.ndarray:
    """Stored vectors (binary float32 vectors or arrays of numbers) as a float32 matrix."""
    if not values:
        return np.zeros((0, dim), dtype=np.float32)
    width = len(VECTOR_HEADER) + 4 * dim
    if all(isinstance(v, bytes) for v in values):  # bson Binary is a bytes subclass
        raw = b"".join(values)
        if len(raw) == width * len(values):
            table = np.frombuffer(raw, dtype=np.uint8).reshape(len(values), width)
            if (table[:, 0] == VECTOR_DTYPE_BYTE).all() and not table[:, 1].any():
                return np.ascontiguousarray(table[:, 2:]).view("<f4").astype(np.float32)
    return np.asarray([decode_vector(v) for v in values], dtype=np.float32).reshape(-1, dim)


# --- catalogue rows ------------------------------------------------------------------------


def plain(value):
    """numpy scalars and NaN as BSON-friendly Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def plain_column(column: pd.Series) -> list:
    """A column's values as :func:`plain` gives them (missing values as ``None``), fast.

    Whole-column conversions for numbers, booleans and text; any other column value by
    value.
    """
    dtype = column.dtype
    kind = dtype.kind if isinstance(dtype, np.dtype) else None
    if kind in ("i", "u", "b"):
        return column.tolist()  # Python ints and bools
    if kind == "f":
        values = column.to_numpy()
        out = values.tolist()
        for i in np.flatnonzero(~np.isfinite(values)):
            out[i] = None
        return out
    if isinstance(dtype, pd.StringDtype) or (
        kind == "O" and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    ):
        out = column.tolist()  # str, and None / NaN / NA where missing
        for i in np.flatnonzero(column.isna().to_numpy()):
            out[i] = None
        return out
    return [plain(v) for v in column.to_numpy(dtype=object)]


def plain_records(frame: pd.DataFrame) -> list[dict]:
    """The rows of ``frame`` as dicts of BSON-friendly values (see :func:`plain_column`)."""
    columns = [str(c) for c in frame.columns]
    if not columns:
        return [{} for _ in range(len(frame))]
    values = [plain_column(frame.iloc[:, j]) for j in range(len(columns))]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def item_id(value):
    """An id as stored: a Python int or str."""
    value = plain(value)
    return value if isinstance(value, (int, str)) else str(value)


def item_ids(ids) -> list:
    """Ids as stored, fast for int and text arrays."""
    arr = np.asarray(ids)
    if arr.dtype.kind in ("i", "u", "U"):  # tolist gives Python ints / str already
        return arr.tolist()
    return [item_id(i) for i in arr.tolist()]
