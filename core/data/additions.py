"""Images labelled from an unlabelled pool, kept in a record beside the dataset, never copied into it.

The file is `<dataset folder>.additions.json`, next to the folder as the corrections file is. Each entry holds
the image's path in its pool, its SHA-256 and its class; every scan adds the entries' images to the dataset
(a class that is new to the dataset appears with them). An entry whose image changed or is gone, or whose
bytes the dataset already holds, is ignored and named in the warnings. A file that is not valid stops the scan
with a sentence naming it. The pool's files are never moved or changed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from core.data.dataset import Dataset, ImageItem, class_name, count_warnings
from core.data.decode import VALIDATION_SIZE, ImageDecodeError, open_image
from core.data.records import beside, read_entries
from core.errors import DataError
from core.fileio import atomic_write_json, not_regular, sha256_bytes

SUFFIX = ".additions.json"
VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Addition:
    path: str  # the image in its pool, absolute
    file: str  # its name inside the pool
    pool: str  # the pool's folder
    sha256: str
    label: str

    @property
    def relpath(self) -> str:
        """The image's name in the dataset's reports: the pool's folder name, a colon, its name there."""
        return f"{Path(self.pool).name}:{self.file}"


def additions_path(root: str | Path) -> Path:
    return beside(root, SUFFIX)


def _malformed(path: Path, why: str) -> DataError:
    return DataError(f"{path} is not a valid record of labelled pool images ({why}). Fix it or delete it to train "
                     f"without those images; neither the dataset's nor the pool's images change either way.")


def read_additions(root: str | Path) -> list[Addition]:
    """The record's entries; none when there is no file; DataError naming the file when it is malformed."""
    path = additions_path(root)
    out = []
    for n, entry in enumerate(read_entries(path, list, _malformed) or [], 1):
        if not (isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("path", "file", "pool",
                                                                                           "sha256", "label"))):
            raise _malformed(path, f"entry {n} needs path, file, pool, sha256 and label, each a string")
        try:
            class_name(entry["label"])
        except DataError as exc:
            raise _malformed(path, f"entry {n}: {exc}") from exc
        if not _inside(entry["path"], entry["pool"], entry["file"]):
            raise _malformed(path, f"entry {n} ({entry['file']!r}): its path {entry['path']!r} is not the file "
                                   f"{entry['file']!r} inside the pool folder {entry['pool']!r}")
        out.append(
            Addition(
                path=entry["path"], file=entry["file"], pool=entry["pool"], sha256=entry["sha256"], label=entry["label"]
            )
        )
    return out


def _inside(path: str, pool: str, file: str) -> bool:
    """The entry's path is its pool's folder joined with its file name, and stays inside that folder (no '..')."""
    pool_root = Path(pool)
    return (pool_root.is_absolute() and Path(path) == pool_root / file
            and os.path.normpath(path).startswith(os.path.normpath(pool) + os.sep))


def write_additions(root: str | Path, additions: list[Addition]) -> Path:
    path = additions_path(root)
    if not additions:
        path.unlink(missing_ok=True)
        return path
    atomic_write_json(path, {"version": VERSION, "dataset": str(root),
                             "entries": [asdict(a) for a in sorted(additions, key=lambda a: a.path)]})
    return path


def remove_additions(root: str | Path) -> int:
    """Forget every addition (the pool's images stay where they are); how many there were."""
    count = len(read_additions(root)) if additions_path(root).is_file() else 0
    additions_path(root).unlink(missing_ok=True)
    return count


def _stale_reason(addition: Addition, held: dict[str, str]) -> str | None:
    kind = not_regular(addition.path)
    if kind:
        return "the file is gone" if kind == "missing" else f"it is {kind}, not an image file"
    try:
        data = Path(addition.path).read_bytes()  # read once: hashed, then decoded
    except OSError:
        return "the file is gone"
    digest = sha256_bytes(data)
    if digest != addition.sha256:
        return "the file changed after it was labelled"
    if digest in held:
        return f"the dataset already holds the same image ({held[digest]})"
    try:
        open_image(data, addition.relpath, target=VALIDATION_SIZE)
    except ImageDecodeError as exc:
        return f"not a usable image ({exc})"
    return None


def apply_additions(dataset: Dataset) -> Dataset:
    """The dataset with its record's images added, and a record of what was applied and what was stale."""
    additions = read_additions(dataset.root)
    if not additions:
        return dataset
    held = {i.sha256: i.relpath for i in dataset.items}
    applied, stale, items = [], [], list(dataset.items)
    for a in additions:
        why = _stale_reason(a, held)
        row = {"file": a.relpath, "path": a.path, "label": a.label, "sha256": a.sha256}
        if why:
            stale.append({**row, "why": why})
            continue
        applied.append(row)
        held[a.sha256] = a.relpath
        items.append(ImageItem(path=a.path, relpath=a.relpath, label=a.label, sha256=a.sha256, origin=a.pool))
    return _rebuilt(dataset, items, applied, stale)


def _rebuilt(dataset: Dataset, items: list[ImageItem], applied: list, stale: list) -> Dataset:
    classes = tuple(sorted({*dataset.classes, *(i.label for i in items)}))
    counts = {c: sum(1 for i in items if i.label == c) for c in classes}
    before = set(count_warnings(dataset.counts()))
    warnings = [w for w in dataset.warnings if w not in before] + list(count_warnings(counts))
    if stale:
        warnings.append(f"{len(stale)} labelled pool image(s) in {additions_path(dataset.root).name} were ignored: "
                        + "; ".join(f"{s['file']} ({s['why']})" for s in stale[:5]))
    record = {"file": str(additions_path(dataset.root)), "applied": applied, "stale": stale}
    return replace(dataset, classes=classes, items=tuple(items), warnings=tuple(dict.fromkeys(warnings)),
                   additions=record)
