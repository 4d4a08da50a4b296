"""Decoding any image a user brings into RGB uint8 arrays, safely and at the size needed.

EXIF orientation is applied; palette, grayscale, 16-bit, CMYK and images with alpha become
RGB (alpha composited on white); animated images give their first frame. The pixel count
is checked from the header before any pixel is decoded, so a decompression bomb costs nothing.

Phone photos are large JPEGs: they decode through JPEG's DCT scaling (`Image.draft`) at the
smallest of 1/2, 1/4, 1/8 that is still at least twice the target size, then resize with a
reducing gap. A test checks the pixels stay within one level on average of the full decode.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from core.errors import DataError

MAX_PIXELS = 40_000_000
DRAFT_FACTOR = 2  # a JPEG decodes at no less than twice the size it is resized to
REDUCING_GAP = 3.0  # Pillow: a first integer reduction, then resampling; indistinguishable at 3.0
VALIDATION_SIZE = 32  # scanning only needs to know an image decodes: the smallest DCT scale
BACKGROUND = (255, 255, 255)
SUPPORTED_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "MPO"}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"}

# Our own cap is checked first; Pillow's bomb guard stays on as a second line of defence.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageDecodeError(DataError):
    """An image could not be used; `reason` is a short machine-friendly cause."""

    def __init__(self, name: str, reason: str, detail: str):
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.reason = reason


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = arr.max() if arr.size and arr.max() > 0 else 1.0
        scale = 65535.0 if peak > 255 else 255.0
        img = Image.fromarray(np.clip(arr / scale * 255.0, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0)
        img = Image.fromarray(((arr - lo) / ((hi - lo) or 1.0) * 255.0).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return img.convert("RGB")


def open_image(data: bytes | BinaryIO, name: str = "image", target: int | None = None) -> Image.Image:
    """Decode `data` (bytes or a binary file) into an RGB PIL image, or raise ImageDecodeError naming the
    file and cause. With `target`, a JPEG decodes at a reduced scale still at least DRAFT_FACTOR x target
    on both sides: every byte is still read, so truncation is caught, at a fraction of the cost."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
            if img.format not in SUPPORTED_FORMATS:
                raise ImageDecodeError(name, "unsupported format",
                                       f"unsupported image format {img.format}; use PNG, JPEG, GIF, BMP, TIFF or WebP")
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageDecodeError(name, "too many pixels",
                                       f"{width}x{height} is over the {MAX_PIXELS // 1_000_000} megapixel limit; "
                                       f"downscale it first")
            if width == 0 or height == 0:
                raise ImageDecodeError(name, "corrupt", "image has no pixels")
            img.seek(0)  # animated images: first frame
            if target and img.format == "JPEG":
                img.draft("RGB", (DRAFT_FACTOR * target, DRAFT_FACTOR * target))
            img.load()
            return _to_rgb(ImageOps.exif_transpose(img))
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(name, "too many pixels", f"image is over the {MAX_PIXELS // 1_000_000} megapixel limit "
                                                        f"({exc}); downscale it first") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageDecodeError(name, "not an image", "not a recognised image file") from exc
    except MemoryError as exc:
        raise ImageDecodeError(name, "too large", "the image needs more memory than is available to decode; "
                                                  "downscale it first") from exc
    except Exception as exc:  # Pillow's decoders raise many types on hostile bytes; any of them means unusable
        raise ImageDecodeError(name, "corrupt", f"corrupt or truncated image ({type(exc).__name__}: {exc})") from exc


def resize(img: Image.Image, size: int, *, crop: bool = False) -> np.ndarray:
    """size x size RGB uint8; crop=True takes the centre square first (ImageNet evaluation style)."""
    if crop:
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=REDUCING_GAP), dtype=np.uint8)


def load_array(source: str | Path | bytes, size: int, name: str | None = None, *, crop: bool = False) -> np.ndarray:
    """Read a path or bytes and return a size x size x 3 uint8 array: the one decode path of training,
    prediction, views and thumbnails."""
    if isinstance(source, (str, Path)):
        name = name or str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ImageDecodeError(name, "unreadable", f"cannot read file ({exc.strerror})") from exc
    else:
        data = source
    return resize(open_image(data, name or "image", target=size), size, crop=crop)


SAVE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                ".bmp": "BMP"}  # GIFs are left as they are: a palette would cost more than it saves


def downscaled(data: bytes, name: str, max_side: int) -> bytes | None:
    """The image re-encoded (in the format its extension names, EXIF orientation applied) with its long
    side at most max_side, or None where it is already small enough, is not such a format, or does not
    decode (the scan then reports it as it is)."""
    fmt = SAVE_FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        return None
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as probe:  # the header only
            warnings.simplefilter("ignore")
            if max(probe.size) <= max_side:
                return None
        img = open_image(data, name, target=max_side // DRAFT_FACTOR)
    except Exception:  # not an image, or a broken one: open_image's reasons come from the scan
        return None
    img.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=REDUCING_GAP)
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue()
