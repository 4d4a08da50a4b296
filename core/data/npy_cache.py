"""Arrays kept on disk across processes: one .npy file per key, written atomically, bounded in bytes
with the least recently used file evicted first. A file that cannot be read back is only a miss."""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core import paths

LISTED_FOR_S = 60.0
LOW_WATER = 0.9  # a full store is evicted to this share of its bound, so the next listing is not at once


class NpyCache:
    """`folder` is relative to the studio's cache folder unless absolute (read each time: tests move the home)."""

    def __init__(self, folder: Path | str, max_bytes: int):
        self._folder, self.max_bytes = Path(folder), max_bytes
        # by folder: the bytes there at the last listing plus what this process put since, and when it was listed
        self._written: dict[Path, int] = {}
        self._listed: dict[Path, float] = {}

    @property
    def folder(self) -> Path:
        return self._folder if self._folder.is_absolute() else paths.cache_dir() / self._folder

    def path(self, space: str, digest: str) -> Path:
        return self.folder / space / digest[:2] / f"{digest}.npy"

    def get(self, space: str, digest: str, valid: Callable[[np.ndarray], bool], *,
            mapped: bool = False) -> np.ndarray | None:
        """mapped: memory-mapped read-only, so only the pages a caller touches are read."""
        path = self.path(space, digest)
        try:
            array = np.load(path, allow_pickle=False, mmap_mode="r" if mapped else None)
            os.utime(path)  # used now: evicted last
        except (OSError, ValueError):
            return None
        return array if valid(array) else None

    def has(self, space: str, digest: str) -> bool:
        return self.path(space, digest).is_file()

    def put(self, space: str, digest: str, array: np.ndarray) -> bool:
        """Written to a temporary name and renamed: readers see a whole file or none. Not fsynced:
        after a power cut a damaged file is only a miss. False when the disk refused."""
        path = self.path(space, digest)
        buf = io.BytesIO()
        np.save(buf, array)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, path)
        except OSError:  # a full or read-only disk: the work goes on without the store
            return False
        if self.folder in self._written:
            self._written[self.folder] += buf.getbuffer().nbytes
        return True

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
        """Remove the least recently used files until the store is within max_bytes (down to LOW_WATER of it).
        The folder is listed only when what was there at the last listing plus what this process wrote since
        could pass the bound (a 20,000-image store is 20,000 stats); other processes' writes are counted at the
        next listing, at most LISTED_FOR_S later."""
        folder = self.folder
        fresh = time.monotonic() - self._listed.get(folder, -LISTED_FOR_S) < LISTED_FOR_S
        if fresh and self._written.get(folder, self.max_bytes + 1) <= self.max_bytes:
            return
        files = self._files()
        total = sum(size for _, size, _ in files)
        target = self.max_bytes if total <= self.max_bytes else int(self.max_bytes * LOW_WATER)
        for _, size, path in files:
            if total <= target:
                break
            path.unlink(missing_ok=True)
            total -= size
        self._written[folder], self._listed[folder] = total, time.monotonic()
