"""A whole image list's stored vectors in one file, read memory-mapped.

One .npy per image keeps the store simple to fill, share and evict, but reading 20,000 of them is 20,000
opens (7.9 s measured). Once the store has every vector of a list of PACK_FROM images or more, they are
also written side by side in one pack; a later read of those images, or of any subset of them (a split's
parts, a sample), takes its rows from the pack memory-mapped, so only the pages it needs are read.
Packs live in the same bounded store as the per-image files and are evicted like them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from core.data.npy_cache import NpyCache

PACK_FROM = 1_000


def _space(space: str) -> str:
    return f"{space}/packs"


def _key(shas: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(shas).encode()).hexdigest()


def write(cache: NpyCache, space: str, shas: Sequence[str], vectors: np.ndarray) -> None:
    """The vectors of these images (rows in the order of `shas`) as one pack; its list of images is written
    last, so a reader finds a list only beside a whole pack."""
    key = _key(shas)
    if len(shas) < PACK_FROM or cache.has(_space(space), f"{key}.shas"):
        return
    if cache.put(_space(space), key, np.ascontiguousarray(vectors, np.float32)):
        cache.put(_space(space), f"{key}.shas", np.array(shas, dtype="U64"))


def _lists(cache: NpyCache, space: str) -> list[Path]:
    """The packs' image lists, the most recently used first."""
    folder = cache.folder / _space(space)
    found = []
    for path in folder.glob("*/*.shas.npy"):
        try:
            found.append((path.stat().st_mtime, path))
        except OSError:
            continue
    return [path for _, path in sorted(found, reverse=True)]


def _is_vectors(shape: tuple[int, int]) -> Callable[[np.ndarray], bool]:
    return lambda array: array.shape == shape and array.dtype == np.float32


def find(cache: NpyCache, space: str, shas: Sequence[str], width: int) -> np.ndarray | None:
    """(len(shas), width) float32 from a pack holding every one of these images: the pack itself,
    memory-mapped, when it holds exactly these in this order, else the rows gathered. None when no pack
    holds them all."""
    for listed in _lists(cache, space):
        key = listed.name[:-len(".shas.npy")]
        stored = cache.get(_space(space), f"{key}.shas", lambda a: a.ndim == 1 and a.dtype.kind == "U")
        if stored is None or len(stored) < len(shas):
            continue
        index = {sha: row for row, sha in enumerate(stored.tolist())}
        rows = [index.get(sha) for sha in shas]
        if None in rows:
            continue
        vectors = cache.get(_space(space), key, _is_vectors((len(stored), width)), mapped=True)
        if vectors is None:
            continue
        if len(rows) == len(stored) and rows == list(range(len(rows))):
            return vectors
        return vectors[np.asarray(rows, dtype=np.int64)]
    return None
