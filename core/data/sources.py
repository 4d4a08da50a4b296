"""Where datasets come from: bundled demos, folders, zip uploads, loose labelled files.

Every source ends as a folder of class sub-folders on disk (uploads are copied there and
released from memory), scanned into a Dataset. Bundled demos are written once as PNGs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from core import paths
from core.data.archive import ZipLimits, import_zip
from core.data.dataset import Dataset, class_name
from core.data.pool import Pool, scan_pool
from core.data.scan import normalise, scan_folder
from core.data.scan_memo import RACY_S
from core.errors import DataError

MAX_IMAGE_BYTES = 25 * 1024**2  # one uploaded image
MAX_FILES_PER_ADD = 500  # images added to a class in one go
MAX_ZIP_BYTES = 1000 * 1000**2  # 1 GB as the browser counts (decimal); server.maxUploadSize = 1000 (MB)


@dataclass(frozen=True, kw_only=True)
class DemoDataset:
    name: str
    description: str
    classes: int
    images: int
    source: str


DEMOS = {
    "digits": DemoDataset(
        name="digits",
        description="Handwritten digits 0-9, 8x8 grayscale, dark on light (far from ImageNet)",
        classes=10,
        images=1797,
        source="scikit-learn load_digits",
    ),
    "faces": DemoDataset(
        name="faces",
        description="Faces vs non-faces, 25x25 grayscale crops from LFW",
        classes=2,
        images=200,
        source="scikit-image data.lfw_subset",
    ),
}


def _demo_arrays(name: str) -> tuple[list[np.ndarray], list[str]]:
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Dark ink on light paper with a 2-pixel margin: ImageNet features separate these far
        # better than light-on-dark edge-to-edge digits (0.96 vs 0.89 validation accuracy
        # measured with a dense head on 50 images per class).
        images = [np.pad(255 - (img / 16.0 * 255.0).round().astype(np.uint8), 2, constant_values=255)
                  for img in digits.images]
        return images, [str(t) for t in digits.target]
    if name == "faces":
        from skimage.data import lfw_subset

        faces = lfw_subset()  # the first 100 are faces, the next 100 are not
        images = [(img * 255.0).round().astype(np.uint8) for img in faces]
        return images, ["face"] * 100 + ["non-face"] * 100
    raise DataError(f"Unknown demo dataset {name!r}; choose one of: {', '.join(DEMOS)}.")


def demo_folder(name: str) -> Path:
    """Write the demo dataset as PNG class folders once; return its folder."""
    if name not in DEMOS:
        raise DataError(f"Unknown demo dataset {name!r}; choose one of: {', '.join(DEMOS)}.")
    folder = paths.datasets_dir() / "demo" / name
    if (folder / ".complete").is_file():
        return folder
    images, labels = _demo_arrays(name)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
    written = time.time() - 2 * RACY_S  # dated before any later edit could be: the first scans may trust them
    try:
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            (tmp / label).mkdir(exist_ok=True)
            Image.fromarray(img, "L").save(tmp / label / f"{name}_{i:04d}.png")
            os.utime(tmp / label / f"{name}_{i:04d}.png", (written, written))
        (tmp / ".complete").write_text("ok\n")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", normalise(text)).strip("-.")[:40] or "dataset"


def _size(data: bytes | BinaryIO) -> int:
    return len(data) if isinstance(data, bytes) else data.seek(0, 2)


def check_upload_sizes(files: list[tuple[str, int]], max_bytes: int, max_files: int) -> None:
    """DataError naming the first file over max_bytes, or the count if there are more than max_files."""
    if len(files) > max_files:
        raise DataError(f"{len(files):,} files at once; the limit is {max_files:,}. Add them in smaller groups.")
    for name, size in files:
        if size > max_bytes:
            raise DataError(f"{name}: {size / 1024**2:.1f} MB is over the {max_bytes / 1024**2:.0f} MB limit for "
                            f"one image; downscale it first.")
        if size == 0:
            raise DataError(f"{name}: the file is empty.")


def check_zip_size(name: str, size: int) -> None:
    """DataError for an uploaded zip over MAX_ZIP_BYTES (the browser refuses it too)."""
    if size > MAX_ZIP_BYTES:
        raise DataError(f"{name}: {size / 1000**3:.2f} GB is over the {MAX_ZIP_BYTES / 1000**3:.0f} GB limit for an "
                        f"uploaded zip; split it into several zips of whole classes, or put the folder on this "
                        f"machine and choose 'Folder on this machine'.")


def uploads_dir() -> Path:
    return paths.datasets_dir() / "uploads"


def check_data_spec(spec: str) -> str:
    """'demo', 'folder' or 'zip' for a usable --data value; DataError naming the choices otherwise."""
    if spec in DEMOS:
        return "demo"
    path = Path(spec).expanduser()
    if path.is_dir():
        return "folder"
    if path.is_file() and path.suffix.lower() == ".zip":
        return "zip"
    raise DataError(f"Data {spec!r} not found: expected a demo name ({', '.join(DEMOS)}), a folder of class "
                    f"folders, or a .zip of class folders.")


def load_dataset(spec: str, progress: Callable[[int, int], None] | None = None,
                 prime_size: int | None = None) -> Dataset:
    """A bundled demo name, a folder path or a zip path (as the CLI's --data takes); progress(done, total)
    while the files are checked; prime_size: see scan_folder."""
    kind = check_data_spec(spec)
    if kind == "demo":
        return scan_folder(demo_folder(spec), name=spec, progress=progress, prime_size=prime_size)
    path = Path(spec).expanduser()
    if kind == "folder":
        return scan_folder(path, progress=progress, prime_size=prime_size)
    return import_zip_file(path, path.name, progress=progress, prime_size=prime_size)


def load_pool(spec: str, progress: Callable[[int, int], None] | None = None) -> Pool:
    """An unlabelled pool: a folder of images (any layout) or a zip of them (unpacked like a dataset zip)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return scan_pool(path, progress=progress)
    if path.is_file() and path.suffix.lower() == ".zip":
        return import_zip_file(path, path.name, progress=progress, pool=True)
    raise DataError(f"Pool {spec!r} not found: expected a folder of images or a .zip of images (no class folders "
                    f"needed).")


def import_zip_file(path: Path, filename: str, limits: ZipLimits = ZipLimits(),
                    progress: Callable[[int, int], None] | None = None, prime_size: int | None = None,
                    *, pool: bool = False):
    """Unpack a zip on disk into the uploads folder (same bytes -> same folder, reused); it is hashed
    and read in pieces, never whole in memory. pool: images without class folders (core.data.pool), kept
    under uploads/pools."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    dest = uploads_dir() / ("pools" if pool else "") / f"{_slug(Path(filename).stem)}-{digest[:12]}"
    scan = scan_pool if pool else scan_folder
    if dest.is_dir():
        return scan(dest, name=Path(filename).stem, progress=progress, prime_size=prime_size)
    return import_zip(Path(path), dest, name=Path(filename).stem, limits=limits, progress=progress,
                      prime_size=prime_size, scan=scan,
                      expected="images, in any folders" if pool else "one folder of images per class")


def add_labelled_files(dataset_name: str, label: str, files: list[tuple[str, bytes | BinaryIO]]) -> Dataset:
    """Teachable-Machine style: save uploaded files (bytes or readable binary files, copied in pieces)
    under uploads/<dataset>/<label>/ and rescan."""
    label = class_name(label)
    check_upload_sizes([(name, _size(data)) for name, data in files], MAX_IMAGE_BYTES, MAX_FILES_PER_ADD)
    folder = uploads_dir() / _slug(dataset_name)
    target = folder / label
    target.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        stem, suffix = _slug(Path(name).stem), Path(name).suffix.lower()[:10]
        out = target / f"{stem}{suffix}"
        n = 1
        while out.exists():
            n += 1
            out = target / f"{stem}-{n}{suffix}"
        with open(out, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data.seek(0)
                shutil.copyfileobj(data, f, 1 << 20)
    return scan_folder(folder, name=dataset_name)
