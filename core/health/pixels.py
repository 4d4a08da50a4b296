"""One look at every image for the health checks: its size, how flat it is, and a small grey thumbnail
(the pixel half of the near-duplicate test). A photo whose array the scan already cached is read from
there; anything else is decoded at a reduced JPEG scale. On every core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from core.data.arrays import DEFAULT_CACHE
from core.data.dataset import ImageItem
from core.data.decode import ImageDecodeError, open_image
from core.data.parallel import parallel_map

THUMB = 16  # side of the grey thumbnail compared for near duplicates


@dataclass(frozen=True)
class Look:
    width: int
    height: int
    spread: float  # standard deviation of the grey levels (0-255): near 0 for a blank image
    thumb: np.ndarray  # (THUMB * THUMB,) zero-mean, unit-length grey levels


def _grey(item: ImageItem, cached_size: int | None) -> Image.Image:
    array = DEFAULT_CACHE.get((item.sha256, cached_size)) if cached_size else None
    if array is not None:  # squashed to a square, as the thumbnail is anyway
        return Image.fromarray(array).convert("L")
    with open(item.path, "rb") as f:
        return open_image(f, item.relpath, target=2 * THUMB).convert("L")


def _look(item: ImageItem, cached_size: int | None = None) -> Look:
    with Image.open(item.path) as header:  # reads the header only
        width, height = header.size
    grey = _grey(item, cached_size)
    small = np.asarray(grey.resize((THUMB, THUMB), Image.BOX), dtype=np.float32).ravel()
    spread = float(np.asarray(grey.resize((4 * THUMB, 4 * THUMB), Image.BOX), dtype=np.float32).std())
    centred = small - small.mean()
    return Look(width, height, spread, centred / max(float(np.linalg.norm(centred)), 1e-6))


def look_at(items: Sequence[ImageItem], progress: Callable[[int, int], None] | None = None,
            cached_size: int | None = None) -> list[Look | None]:
    """A Look per item (None for a file that no longer decodes: the scan found it usable, but it changed);
    cached_size: the input size whose cached arrays may serve."""
    def one(item):
        try:
            return _look(item, cached_size)
        except (ImageDecodeError, OSError):
            return None
    return list(parallel_map(one, items, progress))
