"""Scanning a folder of class sub-folders into a validated Dataset.

Every candidate file is decoded once (JPEGs in draft mode, which still reads the whole
file and so catches truncation) to decide whether it is usable; the reasons for skipping a
file are kept for the report. Exact duplicates (same SHA-256) are kept once: later copies
are skipped, so a duplicate can never land on both sides of a split.
"""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

from core.data.dataset import Dataset, ImageItem, Skipped
from core.data.decode import IMAGE_EXTENSIONS, ImageDecodeError, open_image
from core.errors import DataError

JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
MIN_PER_CLASS_WARNING = 10
IMBALANCE_WARNING_RATIO = 3.0


def is_junk(parts: tuple[str, ...] | list[str]) -> bool:
    """macOS / Windows clutter and hidden files, ignored without a word."""
    return any(p.startswith(".") or p == "__MACOSX" or p.lower() in JUNK_NAMES for p in parts)


def normalise(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _class_root(root: Path) -> Path:
    """A zip often wraps the class folders in one top folder: look inside it."""
    entries = [p for p in root.iterdir() if not is_junk([p.name])]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if not is_junk([p.name])]
        if inner and all(p.is_dir() for p in inner):
            return entries[0]
    return root


def dataset_warnings(counts: dict[str, int]) -> list[str]:
    warnings = []
    small = [c for c, n in counts.items() if n < MIN_PER_CLASS_WARNING]
    if small:
        warnings.append(f"{len(small)} class(es) have fewer than {MIN_PER_CLASS_WARNING} images: "
                        + ", ".join(f"{c} ({counts[c]})" for c in small[:10]))
    present = [n for n in counts.values() if n > 0]
    if present and min(present) * IMBALANCE_WARNING_RATIO < max(present):
        warnings.append(f"Classes are imbalanced: {min(present)} to {max(present)} images per class; "
                        f"accuracy alone can mislead, look at per-class recall.")
    return warnings


def scan_folder(root: str | Path, name: str | None = None, extra_skipped: tuple[Skipped, ...] = ()) -> Dataset:
    """Validate root/<class>/**/<image> into a Dataset."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected a folder with one sub-folder per class.")
    class_root = _class_root(root)
    items: list[ImageItem] = []
    skipped: list[Skipped] = list(extra_skipped)
    seen: dict[str, ImageItem] = {}
    labels = {normalise(p.name) for p in class_root.iterdir() if p.is_dir() and not is_junk([p.name])}
    for path in sorted(class_root.rglob("*")):
        rel_parts = path.relative_to(class_root).parts
        if is_junk(rel_parts) or path.is_dir():
            continue
        relpath = normalise("/".join(rel_parts))
        if path.is_symlink():
            skipped.append(Skipped(relpath, "symbolic link", "links are not followed"))
            continue
        if len(rel_parts) < 2:
            skipped.append(Skipped(relpath, "not in a class folder",
                                   "put each image in a folder named after its class"))
            continue
        label = normalise(rel_parts[0])
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(relpath, "not an image",
                                   f"extension {path.suffix or '(none)'} is not an image type"))
            continue
        try:
            data = path.read_bytes()
            open_image(data, relpath, draft=True)
        except ImageDecodeError as exc:
            skipped.append(Skipped(relpath, exc.reason, str(exc)))
            continue
        except OSError as exc:
            skipped.append(Skipped(relpath, "unreadable", exc.strerror or str(exc)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            first = seen[digest]
            where = "the same class" if first.label == label else f"class {first.label!r}"
            skipped.append(Skipped(relpath, "exact duplicate", f"same bytes as {first.relpath} ({where})"))
            continue
        item = ImageItem(str(path), relpath, label, digest)
        seen[digest] = item
        items.append(item)
    if not labels:
        raise DataError(f"{root} has no class folders; expected one sub-folder of images per class.")
    counts = {c: sum(1 for i in items if i.label == c) for c in sorted(labels)}
    empty = [c for c, n in counts.items() if n == 0]
    counts = {c: n for c, n in counts.items() if n > 0}
    warnings = [f"Class folder {c!r} has no usable images and was left out." for c in empty]
    return Dataset(name or root.name, str(class_root), tuple(counts), tuple(items), tuple(skipped),
                   tuple(warnings + dataset_warnings(counts)))
