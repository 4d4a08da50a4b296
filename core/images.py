"""Image helpers for views: colour maps, overlays, grids, thumbnails and PNG data URIs (numpy + PIL only)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Anchor colours of a perceptually ordered map (dark blue -> teal -> yellow), like viridis.
_ANCHORS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (any shape) to RGB uint8 (shape + (3,))."""
    v = np.clip(np.nan_to_num(values.astype(np.float64)), 0.0, 1.0) * (len(_ANCHORS) - 1)
    low = np.floor(v).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (v - low)[..., None]
    return (_ANCHORS[low] * (1 - frac) + _ANCHORS[low + 1] * frac).round().astype(np.uint8)


def normalise(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant map becomes all zeros."""
    values = values.astype(np.float64)
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def heatmap_image(values: np.ndarray, size: tuple[int, int] | None = None) -> Image.Image:
    """A 2-D map as a coloured image, optionally resized (bilinear) to size=(width, height)."""
    img = Image.fromarray(colormap(normalise(values)))
    return img.resize(size, Image.Resampling.BILINEAR) if size else img


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """Blend a [0, 1] heat map (any resolution) over an RGB uint8 image."""
    h, w = image.shape[:2]
    heat_image = Image.fromarray((normalise(heat) * 255).astype(np.uint8))
    heat_big = np.asarray(heat_image.resize((w, h), Image.Resampling.BILINEAR))
    coloured = colormap(heat_big / 255.0).astype(np.float64)
    return Image.fromarray((image.astype(np.float64) * (1 - alpha) + coloured * alpha).round().astype(np.uint8))


def grid(tiles: list[Image.Image], columns: int, labels: list[str] | None = None, pad: int = 4,
         label_height: int = 22, background=(255, 255, 255)) -> Image.Image:
    """Tiles of equal size in a grid, each with an optional caption underneath, in a font sized to the label's
    height (Pillow's default bitmap font is 11 px, too small to read once the image is scaled down)."""
    if not tiles:
        return Image.new("RGB", (1, 1), background)
    tw, th = tiles[0].size
    rows = -(-len(tiles) // columns)
    cell_h = th + (label_height if labels else 0)
    out = Image.new("RGB", (columns * (tw + pad) + pad, rows * (cell_h + pad) + pad), background)
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(10, label_height - 6))
    for i, tile in enumerate(tiles):
        x, y = pad + (i % columns) * (tw + pad), pad + (i // columns) * (cell_h + pad)
        out.paste(tile.convert("RGB"), (x, y))
        if labels:
            draw.text((x + 1, y + th + 2), labels[i][: max(4, tw // 8)], fill=(30, 30, 30), font=font)
    return out


def thumbnail(image: np.ndarray | Image.Image, size: int = 96) -> Image.Image:
    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    return img.resize((size, size), Image.Resampling.BICUBIC)


def filter_grid(kernel: np.ndarray, scale: int = 8, columns: int = 8) -> Image.Image:
    """First-layer filters (kh, kw, 3, n) as RGB tiles, each filter scaled to its own range."""
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        raise ValueError(f"expected a first-layer kernel of shape (kh, kw, 3, n), got {kernel.shape}")
    tiles = []
    for i in range(kernel.shape[3]):
        f = kernel[..., i]
        f = (f - f.min()) / (f.max() - f.min() + 1e-12)
        tile = Image.fromarray((f * 255).round().astype(np.uint8)).resize(
            (kernel.shape[1] * scale, kernel.shape[0] * scale), Image.Resampling.NEAREST)
        tiles.append(tile)
    return grid(tiles, columns=min(columns, len(tiles)), labels=[str(i) for i in range(len(tiles))],
                label_height=16)  # tiles of 24 px: a smaller caption


def png_data_uri(image: np.ndarray | Image.Image) -> str:
    """The image as a PNG `data:` URI, for HTML that must open offline and tables that show pictures."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
