"""A user's corrections to a dataset, kept beside it: "wrong label, should be X" or "exclude".

The file is `<dataset folder>.overrides.json`, next to the folder (never inside it). The images are
never moved or changed, nor is the unpacked copy of an uploaded zip: a scan reads the file and
relabels or leaves out the images it names. Each entry holds the image's SHA-256, so an entry whose
image was edited or removed is stale: it is ignored and named in the dataset's warnings. A file
that is not valid stops the scan with a sentence naming it, rather than train on half a correction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

from core.data.dataset import Dataset, ImageItem, count_warnings
from core.data.records import beside, read_entries
from core.errors import DataError
from core.fileio import atomic_write_json

SUFFIX = ".overrides.json"
Action = Literal["relabel", "exclude"]
ACTIONS: tuple[Action, ...] = get_args(Action)
VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Override:
    relpath: str
    sha256: str
    action: Action
    label: str | None = None  # the right class, for relabel

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "action": self.action, **({"label": self.label} if self.label else {})}


def overrides_path(root: str | Path) -> Path:
    return beside(root, SUFFIX)


def _malformed(path: Path, why: str) -> DataError:
    return DataError(f"{path} is not a valid overrides file ({why}). Fix it or delete it to train without "
                     f"corrections; the dataset's images are unchanged either way.")


def read_overrides(root: str | Path) -> dict[str, Override]:
    """relpath -> Override; empty when there is no file; DataError naming the file when it is malformed."""
    path = overrides_path(root)
    entries = read_entries(path, dict, _malformed)
    out = {}
    for relpath, entry in (entries or {}).items():
        if not (isinstance(entry, dict) and entry.get("action") in ACTIONS and isinstance(entry.get("sha256"), str)):
            raise _malformed(path, f"entry {relpath!r} needs a sha256 and an action ({' or '.join(ACTIONS)})")
        if entry["action"] == "relabel" and not isinstance(entry.get("label"), str):
            raise _malformed(path, f"entry {relpath!r} relabels without a label")
        out[relpath] = Override(
            relpath=relpath, sha256=entry["sha256"], action=entry["action"], label=entry.get("label")
        )
    return out


def write_overrides(root: str | Path, overrides: dict[str, Override]) -> Path:
    path = overrides_path(root)
    if not overrides:
        path.unlink(missing_ok=True)
        return path
    atomic_write_json(path, {"version": VERSION, "dataset": str(root),
                             "entries": {k: o.to_json() for k, o in sorted(overrides.items())}})
    return path


def set_override(dataset: Dataset, relpath: str, action: str | None, label: str | None = None) -> Path:
    """Mark one image (action None: clear its mark). The dataset's own files are not touched."""
    overrides = read_overrides(dataset.root)
    item = next((i for i in dataset.items if i.relpath == relpath), None)
    original = dataset.overrides.get("original_labels", {}).get(relpath)
    if item is None and relpath not in overrides:
        raise DataError(f"{relpath} is not an image of this dataset.")
    if action is None:
        overrides.pop(relpath, None)
    elif action not in ACTIONS:
        raise DataError(f"Unknown correction {action!r}; choose one of {', '.join(ACTIONS)}.")
    elif action == "relabel" and label not in dataset.classes:
        raise DataError(f"Class {label!r} is not one of this dataset's classes ({', '.join(dataset.classes)}).")
    elif action == "relabel" and label == (original or (item and item.label)) and relpath in overrides:
        overrides.pop(relpath)  # back to the label the folder gives
    else:
        sha = item.sha256 if item is not None else overrides[relpath].sha256
        overrides[relpath] = Override(
            relpath=relpath, sha256=sha, action=action, label=label if action == "relabel" else None
        )
    return write_overrides(dataset.root, overrides)


def apply_overrides(dataset: Dataset) -> Dataset:
    """The dataset as its overrides file corrects it, with a record of what was applied and what was stale."""
    overrides = read_overrides(dataset.root)
    if not overrides:
        return dataset
    by_path = {i.relpath: i for i in dataset.items}
    applied: list[dict] = []
    stale: list[dict] = []
    items: list[ImageItem] = []
    original: dict[str, str] = {}
    for relpath, o in overrides.items():
        item = by_path.get(relpath)
        why = ("the file is gone" if item is None else "the file changed after it was marked"
               if item.sha256 != o.sha256 else f"class {o.label!r} is not in the dataset"
               if o.action == "relabel" and o.label not in dataset.classes else None)
        (stale if why else applied).append({"file": relpath, "action": o.action, "label": o.label,
                                            **({"why": why} if why else {})})
    active = {a["file"]: a for a in applied}
    for item in dataset.items:
        a = active.get(item.relpath)
        if a is None:
            items.append(item)
        elif a["action"] == "relabel":
            original[item.relpath] = item.label
            items.append(replace(item, label=a["label"]))
    return _rebuilt(dataset, items, applied, stale, original)


def _rebuilt(dataset: Dataset, items: list, applied: list, stale: list, original: dict) -> Dataset:
    counts = {c: sum(1 for i in items if i.label == c) for c in dataset.classes}
    classes = tuple(c for c in dataset.classes if counts[c])
    warnings = [*dataset.file_warnings, *count_warnings({c: counts[c] for c in classes})]
    if stale:
        warnings.append(f"{len(stale)} correction(s) in {overrides_path(dataset.root).name} no longer match the "
                        f"dataset and were ignored: " + "; ".join(f"{s['file']} ({s['why']})" for s in stale[:5]))
    record = {"file": str(overrides_path(dataset.root)), "applied": applied, "stale": stale,
              "original_labels": original}
    return replace(dataset, classes=classes, items=tuple(items), warnings=tuple(dict.fromkeys(warnings)),
                   overrides=record)
