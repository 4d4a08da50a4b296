"""One look at every image for the health checks: its size, how flat it is, and a small grey thumbnail
(the pixel half of the near-duplicate test). Decoded at a reduced JPEG scale, on every core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

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


def _look(item: ImageItem) -> Look:
    with Image.open(item.path) as header:
        width, height = header.size
    with open(item.path, "rb") as f:
        grey = open_image(f, item.relpath, target=2 * THUMB).convert("L")
    small = np.asarray(grey.resize((THUMB, THUMB), Image.BOX), dtype=np.float32).ravel()
    spread = float(np.asarray(grey.resize((4 * THUMB, 4 * THUMB), Image.BOX), dtype=np.float32).std())
    centred = small - small.mean()
    return Look(width, height, spread, centred / max(float(np.linalg.norm(centred)), 1e-6))


def look_at(items: Sequence[ImageItem], progress: Callable[[int, int], None] | None = None) -> list[Look | None]:
    """A Look per item (None for a file that no longer decodes: the scan found it usable, but it changed)."""
    def one(item):
        try:
            return _look(item)
        except (ImageDecodeError, OSError):
            return None
    return list(parallel_map(one, items, progress))
