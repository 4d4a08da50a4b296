"""Decode images once to uint8 arrays at the backbone's input size, with a bounded cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

from core.data.dataset import ImageItem
from core.data.decode import load_array


class ArrayCache:
    """Least-recently-used cache of decoded images keyed by (SHA-256, size), bounded in bytes."""

    def __init__(self, max_bytes: int = 1536 * 1024**2):
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key, value: np.ndarray) -> None:
        with self._lock:
            if key in self._data or value.nbytes > self.max_bytes:
                return
            self._data[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._data.popitem(last=False)
                self._bytes -= old.nbytes

    @property
    def nbytes(self) -> int:
        return self._bytes


DEFAULT_CACHE = ArrayCache()


def load_arrays(items: Sequence[ImageItem], size: int, cache: ArrayCache | None = DEFAULT_CACHE,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(N, size, size, 3) uint8, in the order of `items`."""
    out = np.empty((len(items), size, size, 3), dtype=np.uint8)
    for i, item in enumerate(items):
        key = (item.sha256, size)
        arr = cache.get(key) if cache is not None else None
        if arr is None:
            arr = load_array(item.path, size, name=item.relpath)
            if cache is not None:
                cache.put(key, arr)
        out[i] = arr
        if progress is not None and (i + 1 == len(items) or (i + 1) % 64 == 0):
            progress(i + 1, len(items))
    return out
