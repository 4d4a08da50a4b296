"""One look at every image for the health checks: its size, how flat it is, and a small grey thumbnail
(the pixel half of the near-duplicate test). A photo whose array the scan already cached is read from
there; anything else is decoded at a reduced JPEG scale. On every core."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from core.data.arrays import DEFAULT_CACHE
from core.data.dataset import ImageItem
from core.data.decode import ImageDecodeError, open_image
from core.data.npy_cache import NpyCache
from core.data.parallel import parallel_map

THUMB = 16  # side of the grey thumbnails compared for near duplicates
CROPS = (0.0, 0.025, 0.05)  # each thumbnail also of the centre with this share cut from every side
BLUR = 1.0  # pixels of Gaussian blur: a copy resized by a pixel or two then lines up with its original
LOOKS = NpyCache("looks", 512 * 1024**2)  # 3 KB an image: 64 MB held only 20,000, and a 20,000-image set thrashed
SPACE = f"thumb{THUMB}-crops{len(CROPS)}-blur{BLUR}"  # a change to how looks are made starts a new space
ROW = 3 + len(CROPS) * THUMB * THUMB  # width, height, spread, the thumbnails


@dataclass(frozen=True, kw_only=True)
class Look:
    width: int
    height: int
    spread: float  # standard deviation of the grey levels (0-255): near 0 for a blank image
    thumb: np.ndarray  # (len(CROPS), THUMB * THUMB): per crop, zero-mean, unit-length grey levels


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
    spread = float(np.asarray(grey.resize((4 * THUMB, 4 * THUMB), Image.Resampling.BOX), dtype=np.float32).std())
    return Look(width=width, height=height, spread=spread, thumb=np.stack([_thumb(grey, crop) for crop in CROPS]))


def _thumb(grey: Image.Image, crop: float) -> np.ndarray:
    """The centre (crop cut from each side) at THUMB x THUMB, smoothly resampled and blurred: an 8-pixel
    digit and its 9-pixel copy then correlate as copies do, not as their pixel grids happen to align. The
    crops let a slightly cropped copy meet its original at the same scale."""
    w, h = grey.size
    box = (w * crop, h * crop, w * (1 - crop), h * (1 - crop))
    small = grey.resize((THUMB, THUMB), Image.Resampling.BICUBIC, box=box)
    levels = np.asarray(small.filter(ImageFilter.GaussianBlur(BLUR)), dtype=np.float32).ravel()
    centred = levels - levels.mean()
    return centred / max(float(np.linalg.norm(centred)), 1e-6)


def look_at(items: Sequence[ImageItem], progress: Callable[[int, int], None] | None = None,
            cached_size: int | None = None) -> list[Look | None]:
    """A Look per item (None for a file that no longer decodes: the scan found it usable, but it changed);
    cached_size: the input size whose cached arrays may serve. Looks are kept by the bytes' digest: every
    training run's leak check looks at its sample again, and reading a look back is ten times quicker."""
    def one(item):
        kept = LOOKS.get(SPACE, item.sha256, lambda row: row.shape == (ROW,))
        if kept is not None:
            return Look(
                width=int(kept[0]),
                height=int(kept[1]),
                spread=float(kept[2]),
                thumb=kept[3:].reshape(len(CROPS), THUMB * THUMB),
            )
        try:
            look = _look(item, cached_size)
        except (ImageDecodeError, OSError):
            return None
        LOOKS.put(SPACE, item.sha256, np.concatenate([[look.width, look.height, look.spread],
                                                      look.thumb.ravel()]).astype(np.float32))
        return look
    looks = list(parallel_map(one, items, progress))
    LOOKS.evict()
    return looks
