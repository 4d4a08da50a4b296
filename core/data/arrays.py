"""Decode images once to uint8 arrays at the backbone's input size, on every core, and keep them on
disk across runs: a worker process exits after each run, so only a cache on disk lets the next run
on the same photos decode nothing."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core import paths
from core.data.dataset import ImageItem
from core.data.decode import load_array
from core.data.parallel import parallel_map

CACHE_BYTES = 2 * 1024**3


class ArrayCache:
    """Resized arrays as .npy files under `folder`/<size>/, keyed by the image's SHA-256 and the size;
    bounded in bytes, the least recently used evicted first. A file that cannot be read back as the
    right array is a miss, so a damaged cache costs a decode, never a wrong image."""

    def __init__(self, folder: Path | None = None, max_bytes: int = CACHE_BYTES):
        self._folder, self.max_bytes = folder, max_bytes
        self.decoded = 0  # images load_arrays had to decode (misses), in this process

    @property
    def folder(self) -> Path:
        return self._folder or paths.studio_home() / "cache" / "arrays"

    def _path(self, key: tuple[str, int]) -> Path:
        digest, size = key
        return self.folder / str(size) / digest[:2] / f"{digest}.npy"

    def get(self, key: tuple[str, int]) -> np.ndarray | None:
        path = self._path(key)
        try:
            array = np.load(path, allow_pickle=False)
            os.utime(path)  # used now: evicted last
        except (OSError, ValueError):
            return None
        return array if array.shape == (key[1], key[1], 3) and array.dtype == np.uint8 else None

    def has(self, key: tuple[str, int]) -> bool:
        return self._path(key).is_file()

    def put(self, key: tuple[str, int], array: np.ndarray) -> None:
        """Written to a temporary name and renamed: readers see a whole file or none. Not fsynced:
        after a power cut a damaged file is only a miss."""
        path = self._path(key)
        buf = io.BytesIO()
        np.save(buf, array)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, path)
        except OSError:  # a full or read-only disk: the run goes on without the cache
            return

    def _files(self) -> list[tuple[float, int, Path]]:
        found = []
        for path in self.folder.rglob("*.npy"):
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((stat.st_mtime, stat.st_size, path))
        return sorted(found)

    @property
    def nbytes(self) -> int:
        return sum(size for _, size, _ in self._files())

    def evict(self) -> None:
        """Remove the least recently used files until the cache is within max_bytes."""
        files = self._files()
        total = sum(size for _, size, _ in files)
        for _, size, path in files:
            if total <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


DEFAULT_CACHE = ArrayCache()


def load_arrays(items: Sequence[ImageItem], size: int, cache: ArrayCache | None = DEFAULT_CACHE,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(N, size, size, 3) uint8, in the order of `items`: from the cache, else decoded (in parallel)."""
    written = []

    def one(item: ImageItem) -> np.ndarray:
        key = (item.sha256, size)
        array = cache.get(key) if cache is not None else None
        if array is None:
            array = load_array(item.path, size, name=item.relpath)
            if cache is not None:
                cache.put(key, array)
                written.append(key)
        return array

    out = np.empty((len(items), size, size, 3), dtype=np.uint8)
    for i, array in enumerate(parallel_map(one, items, progress)):
        out[i] = array
    if written:
        cache.decoded += len(written)
        cache.evict()
    return out
