"""Odd images: very small against the rest, nearly blank, or of an extreme shape, each with its reason."""

from __future__ import annotations

import numpy as np

from core.health.pixels import Look

SMALL_SHARE = 0.25  # short side below a quarter of the dataset's median short side
TINY = 8  # pixels: too small whatever the rest are
BLANK_SPREAD = 3.0  # grey-level standard deviation below which an image is one flat colour
EXTREME_ASPECT = 4.0


def odd_reasons(looks: list[Look | None]) -> dict[int, str]:
    """index -> why the image is odd, for the images that are."""
    shorts = [min(x.width, x.height) for x in looks if x is not None]
    median = float(np.median(shorts)) if shorts else 0.0
    reasons = {}
    for i, look in enumerate(looks):
        if look is None:
            reasons[i] = "no longer decodes: the file changed after the scan"
            continue
        short, long_side = min(look.width, look.height), max(look.width, look.height)
        if short < TINY or short < SMALL_SHARE * median:
            reasons[i] = (f"very small: {look.width}x{look.height} px, where the dataset's median short side is "
                          f"{median:.0f} px")
        elif look.spread < BLANK_SPREAD:
            reasons[i] = f"nearly blank: grey levels vary by {look.spread:.1f} of 255"
        elif long_side / short >= EXTREME_ASPECT:
            reasons[i] = (f"extreme aspect ratio {long_side / short:.1f}:1 ({look.width}x{look.height} px); the "
                          f"model sees it squashed into a square")
    return reasons
