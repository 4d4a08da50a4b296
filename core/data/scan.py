"""Scanning a folder of class sub-folders into a validated Dataset.

Every candidate file is hashed in pieces and decoded once (JPEGs at their smallest DCT scale,
which still reads the whole file and so catches truncation) to decide whether it is usable,
on every core; the reasons for skipping a file are kept for the report. Exact duplicates
(same SHA-256) are kept once: later copies are skipped, so a duplicate can never land on both
sides of a split. A file unchanged since the last scan keeps that scan's verdict (core.data.scan_memo).
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Callable
from functools import partial
from pathlib import Path

from core.data.additions import apply_additions
from core.data.arrays import DEFAULT_CACHE
from core.data.dataset import Dataset, ImageItem, Skipped, control_characters, count_warnings
from core.data.decode import DRAFT_FACTOR, IMAGE_EXTENSIONS, VALIDATION_SIZE, ImageDecodeError, open_image, resize
from core.data.overrides import apply_overrides
from core.data.parallel import parallel_map
from core.data.scan_memo import ScanMemo, Verdict
from core.errors import DataError
from core.fileio import not_regular, read_json

JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}
IMPORT_RECORD = ".import.json"  # written by a zip import beside its class folders; hidden, so never an image


def is_junk(parts: tuple[str, ...] | list[str]) -> bool:
    """macOS / Windows clutter and hidden files, ignored without a word."""
    return any(p.startswith(".") or p == "__MACOSX" or p.lower() in JUNK_NAMES for p in parts)


def files_under(root: Path) -> tuple[list[Path], list[Skipped]]:
    """Every file under root, in name order, by the studio's one policy for links in a folder the user chose
    (README, "Symbolic links"): a link to a regular file is followed, wherever it points (it is the user's own
    disk); a link to a folder is not entered, and a dangling link or one to a special file is skipped, each
    named with why. Clutter (is_junk) is passed over without a word; what a path that is not a link turns out
    to be is the caller's to check."""
    found, skipped = [], []
    for folder, dirs, files in os.walk(root):  # followlinks=False: a link to a folder is listed, not entered
        here = Path(folder)
        for name in sorted(dirs):
            if is_junk([name]):
                dirs.remove(name)
            elif (here / name).is_symlink():
                dirs.remove(name)
                skipped.append(_link_skipped(here / name, root, "a folder"))
        for name in files:
            if is_junk([name]):  # junk folders were not entered, so the name alone decides
                continue
            path = here / name
            target = not_regular(path) if path.is_symlink() else None
            if target:
                skipped.append(_link_skipped(path, root, target))
            else:
                found.append(path)
    return sorted(found), sorted(skipped, key=lambda s: s.name)


def _link_skipped(path: Path, root: Path, target: str) -> Skipped:
    name = normalise(path.relative_to(root).as_posix())
    if target == "missing":
        return Skipped(name=name, reason="broken link", detail=f"it points to {os.readlink(path)}, which is not there")
    return Skipped(name=name, reason="link not followed", detail=f"it points to {target}; only links to image "
                                                                 f"files are followed")


def normalise(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def class_root(root: Path) -> Path:
    """A zip often wraps the class folders in one top folder: look inside it."""
    entries = [p for p in root.iterdir() if not is_junk([p.name])]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        inner = [p for p in entries[0].iterdir() if not is_junk([p.name])]
        if inner and all(p.is_dir() for p in inner):
            return entries[0]
    return root


def scan_folder(root: str | Path, name: str | None = None, progress: Callable[[int, int], None] | None = None,
                prime_size: int | None = None) -> Dataset:
    """Validate root/<class>/**/<image> into a Dataset; progress(done, total) as files are checked.
    With prime_size, images decode at that size instead of the smallest, and the arrays of large ones
    (photos: what costs to decode) go into the array cache, so that training right after decodes them
    no more: one decode per photo, not two. Small images are cheap to decode again and are not kept.
    A file whose bytes already have an array there is not decoded again at all."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected a folder with one sub-folder per class.")
    classes_in = class_root(root)
    labels = {normalise(p.name) for p in classes_in.iterdir()
              if p.is_dir() and not p.is_symlink() and not is_junk([p.name])}  # a linked folder is not entered
    if not labels:
        raise DataError(f"{root} has no class folders; expected one sub-folder of images per class.")
    candidates, passed_over = candidates_in(classes_in)
    candidates, refused, name_warnings = refuse_unusable_names(candidates, labels)
    labels -= refused
    if not labels:
        raise DataError(" ".join(name_warnings))
    skipped, notes = import_record(classes_in)
    skipped += passed_over
    items: list[ImageItem] = []
    seen: dict[str, ImageItem] = {}
    checked_all = verdicts(classes_in, candidates, prime_size, progress)
    for (path, relpath, label), verdict in zip(candidates, checked_all, strict=True):
        checked = verdict.digest
        if not checked:
            skipped.append(Skipped(name=relpath, reason=verdict.reason, detail=verdict.detail))
        elif checked in seen:
            first = seen[checked]
            where = "the same class" if first.label == label else f"class {first.label!r}"
            skipped.append(
                Skipped(name=relpath, reason="exact duplicate", detail=f"same bytes as {first.relpath} ({where})")
            )
        else:
            seen[checked] = ImageItem(path=str(path), relpath=relpath, label=label, sha256=checked)
            items.append(seen[checked])
    counts = {c: sum(1 for i in items if i.label == c) for c in sorted(labels)}
    empty = [c for c, n in counts.items() if n == 0]
    counts = {c: n for c, n in counts.items() if n > 0}
    file_warnings = name_warnings + tuple(f"Class folder {c!r} has no usable images and was left out."
                                          for c in empty)
    if prime_size:
        DEFAULT_CACHE.evict()
    dataset = Dataset(
        name=name or root.name,
        root=str(classes_in),
        classes=tuple(counts),
        items=tuple(items),
        skipped=tuple(skipped),
        warnings=file_warnings + count_warnings(counts),
        notes=notes,
        file_warnings=file_warnings,
    )
    return apply_additions(apply_overrides(dataset))


def refuse_unusable_names(candidates: list[tuple[Path, str, str]], labels: set[str]):
    """Class folders whose name holds a control character (a newline, a tab...) are left out: labels.txt has one
    class a line and a CSV one a cell. (candidates kept, the refused names, a warning for each naming it.)"""
    refused = {label for label in labels if control_characters(label)}
    warnings = tuple(f"Class folder {label!r} was left out: its name holds {', '.join(control_characters(label))}, "
                     f"which a labels file or a CSV cannot hold. Rename the folder." for label in sorted(refused))
    return [c for c in candidates if c[2] not in refused], refused, warnings


def import_record(classes_in: Path) -> tuple[list[Skipped], tuple[str, ...]]:
    """What a zip import wrote beside the class folders: the members it skipped, and a note of the
    images it downscaled. Nothing for a folder that was not imported (or a damaged record)."""
    try:
        record = read_json(classes_in / IMPORT_RECORD)
        skipped = [Skipped(**x) for x in record.get("skipped", [])]
    except (OSError, ValueError, TypeError):
        return [], ()
    notes = (f"{record['downscaled']} image(s) were downscaled to at most {record['max_side']} px on the long side "
             f"in the studio's copy; the zip itself is unchanged.",) if record.get("downscaled") else ()
    return skipped, notes


def candidates_in(class_root: Path, *, labelled: bool = True) -> tuple[list[tuple[Path, str, str]], list[Skipped]]:
    """(path, relpath, label) of every file worth decoding, in name order, and what was passed over. Not
    labelled (an unlabelled pool): images anywhere, each with the label ""."""
    candidates = []
    files, skipped = files_under(class_root)
    for path in files:
        rel_parts = path.relative_to(class_root).parts
        relpath = normalise("/".join(rel_parts))
        if labelled and len(rel_parts) < 2:
            skipped.append(Skipped(name=relpath, reason="not in a class folder",
                                   detail="put each image in a folder named after its class"))
        elif path.suffix.lower() not in IMAGE_EXTENSIONS:
            skipped.append(Skipped(name=relpath, reason="not an image",
                                   detail=f"extension {path.suffix or '(none)'} is not an image type"))
        elif kind := not_regular(path):
            skipped.append(
                Skipped(name=relpath, reason="not a regular file", detail=f"{kind}; only regular files are read")
            )
        else:
            candidates.append((path, relpath, normalise(rel_parts[0]) if labelled else ""))
    return candidates, skipped


def verdicts(classes_in: Path, candidates: list[tuple[Path, str, str]], prime_size: int | None,
              progress: Callable[[int, int], None] | None) -> list[Verdict]:
    """Each candidate's verdict: the last scan's where the file is unchanged (and, with prime_size, a large
    image's array is still cached), else checked now on every core."""
    memo = ScanMemo(classes_in)
    known = [memo.get(path, relpath) for path, relpath, _ in candidates]
    known = [None if v is None or _needs_priming(v, prime_size) else v for v in known]
    todo = [c for c, v in zip(candidates, known, strict=True) if v is None]
    fresh = parallel_map(partial(_check, prime_size=prime_size), todo, progress)
    verdicts = []
    for (path, relpath, _), verdict in zip(candidates, known, strict=True):
        if verdict is None:
            verdict = next(fresh)
            if verdict.reason != "unreadable":  # a permission may be fixed without touching the file
                memo.put(path, relpath, verdict)
        verdicts.append(verdict)
    memo.save()
    return verdicts


def _needs_priming(verdict: Verdict, prime_size: int | None) -> bool:
    """A large image whose array is not cached: decode it now, once, rather than again in training."""
    return bool(prime_size and verdict.digest and verdict.min_side >= DRAFT_FACTOR * prime_size
                and not DEFAULT_CACHE.has((verdict.digest, prime_size)))


def _check(candidate: tuple[Path, str, str], prime_size: int | None = None) -> Verdict:
    """The file's SHA-256 (read in pieces) if it decodes, else why it is skipped."""
    path, relpath, _ = candidate
    try:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
            if prime_size and DEFAULT_CACHE.has((digest, prime_size)):  # decoded before: its array is cached
                return Verdict(digest=digest, min_side=DRAFT_FACTOR * prime_size)
            f.seek(0)
            image = open_image(f, relpath, target=prime_size or VALIDATION_SIZE)
        if prime_size and min(image.size) >= DRAFT_FACTOR * prime_size:
            DEFAULT_CACHE.put((digest, prime_size), resize(image, prime_size))
        return Verdict(digest=digest, min_side=min(image.size))
    except ImageDecodeError as exc:
        return Verdict(reason=exc.reason, detail=str(exc))
    except OSError as exc:
        return Verdict(reason="unreadable", detail=exc.strerror or str(exc))
