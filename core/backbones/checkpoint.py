"""Reader for PyTorch's legacy (non-zip) checkpoint format, with pickle + numpy only.

Layout of such a file: pickled magic number, protocol version, system info, the state
dict (tensors refer to storages by persistent id), a pickled list of storage keys, then
for each key an 8-byte little-endian element count and the raw little-endian data.
Only the handful of classes a state dict needs may be unpickled; anything else is refused,
because unpickling an arbitrary class can run arbitrary code.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """The file is not a PyTorch legacy checkpoint this reader accepts."""


@dataclass(frozen=True, kw_only=True)
class _StorageRef:
    key: str
    dtype: type


@dataclass(frozen=True, kw_only=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _TensorRef(storage=storage, offset=int(storage_offset), size=tuple(size), stride=tuple(stride))


class _StorageType:
    """Stands in for torch.FloatStorage etc.: only its name is needed."""

    def __init__(self, name: str):
        self.name = name


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise CheckpointError(
            f"{self._path}: refusing to unpickle {module}.{name}; a PyTorch state dict only needs "
            f"tensors and OrderedDict. Use the original checkpoint file from the weights package."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise CheckpointError(f"{self._path}: unexpected persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        name = storage_type.name if isinstance(storage_type, _StorageType) else str(storage_type)
        if name not in _STORAGE_DTYPES:
            raise CheckpointError(f"{self._path}: unsupported storage type {name!r}")
        return _StorageRef(key=key, dtype=_STORAGE_DTYPES[name])


def read_state_dict(path: str | Path) -> collections.OrderedDict[str, np.ndarray]:
    """Return the checkpoint's state dict as name -> numpy array (tensors copied out)."""
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    stream = io.BytesIO(data)

    def load():
        try:
            return _Unpickler(stream, path).load()
        except CheckpointError:
            raise
        except Exception as exc:  # malformed or truncated pickle data
            raise CheckpointError(f"{path}: not a readable PyTorch legacy checkpoint ({exc})") from exc

    if load() != MAGIC_NUMBER:
        raise CheckpointError(f"{path}: wrong magic number; expected a PyTorch legacy (non-zip) checkpoint")
    if load() != PROTOCOL_VERSION:
        raise CheckpointError(f"{path}: unsupported protocol version; expected {PROTOCOL_VERSION}")
    load()  # system info (endianness, type sizes); the data below is little-endian
    state = load()
    keys = load()
    if not isinstance(state, dict) or not isinstance(keys, list):
        raise CheckpointError(f"{path}: expected a state dict followed by a list of storage keys")

    dtypes = {}
    for value in state.values():
        if isinstance(value, _TensorRef):
            dtypes[value.storage.key] = value.storage.dtype
    storages = {}
    for key in keys:
        key = str(key)
        header = stream.read(8)
        if len(header) != 8:
            raise CheckpointError(f"{path}: truncated before storage {key}")
        count = int.from_bytes(header, "little")
        dtype = np.dtype(dtypes.get(key, np.float32)).newbyteorder("<")
        raw = stream.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise CheckpointError(f"{path}: truncated inside storage {key}")
        storages[key] = np.frombuffer(raw, dtype=dtype)

    result = collections.OrderedDict()
    for name, value in state.items():
        if isinstance(value, _TensorRef):
            flat = storages.get(value.storage.key)
            if flat is None:
                raise CheckpointError(f"{path}: tensor {name} refers to missing storage {value.storage.key}")
            itemsize = flat.dtype.itemsize
            view = np.lib.stride_tricks.as_strided(
                flat[value.offset:],
                shape=value.size,
                strides=tuple(s * itemsize for s in value.stride),
                writeable=False,
            )
            result[name] = np.array(view, dtype=flat.dtype.newbyteorder("="))
        else:
            result[name] = np.asarray(value)
    return result
