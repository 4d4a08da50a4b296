"""An unlabelled pool: images in any folder layout, to pick from and label (core.data.additions keeps the labels).

The pool is checked as a dataset's folder is (every file hashed and decoded, on every core, remembered between
scans); exact copies, of another pool image or of an image the dataset already holds, are set aside and named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from core.data.additions import Addition, additions_path, read_additions, write_additions
from core.data.dataset import Dataset, ImageItem, Skipped, class_name
from core.data.scan import candidates_in, class_root, import_record, verdicts
from core.errors import DataError


@dataclass(frozen=True, kw_only=True)
class Pool:
    name: str
    root: str
    items: tuple[ImageItem, ...]  # usable and not yet labelled; label ""
    skipped: tuple[Skipped, ...] = ()  # not images, corrupt, links
    duplicates: tuple[Skipped, ...] = ()  # copies set aside, each naming what it copies
    labelled: tuple[str, ...] = ()  # pool files the dataset already holds as labelled additions

    def __len__(self) -> int:
        return len(self.items)

    def item(self, file: str) -> ImageItem | None:
        return next((i for i in self.items if i.relpath == file), None)


def scan_pool(root: str | Path, name: str | None = None, progress: Callable[[int, int], None] | None = None,
              prime_size: int | None = None) -> Pool:
    """Every usable image under root; DataError when the folder is empty or holds no usable image."""
    root = Path(root).expanduser().resolve()  # additions name the pool by its folder: one spelling of it
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected a folder (or a zip) of unlabelled images.")
    candidates, skipped = candidates_in(root, labelled=False)
    skipped += import_record(class_root(root))[0]  # what a zip import passed over
    if not candidates and not skipped:
        raise DataError(f"{root} is empty: put the images you want to label in it, in any folders.")
    items, duplicates, seen = [], [], dict[str, str]()
    for (path, relpath, _), verdict in zip(candidates, verdicts(root, candidates, prime_size, progress), strict=True):
        if not verdict.digest:
            skipped.append(Skipped(name=relpath, reason=verdict.reason, detail=verdict.detail))
        elif verdict.digest in seen:
            duplicates.append(
                Skipped(name=relpath, reason="duplicate", detail=f"same bytes as {seen[verdict.digest]} in the pool")
            )
        else:
            seen[verdict.digest] = relpath
            items.append(ImageItem(path=str(path), relpath=relpath, label="", sha256=verdict.digest))
    if not items:
        reasons = ", ".join(sorted({s.reason for s in skipped}))
        raise DataError(f"{root} has no usable images: {len(skipped)} file(s) skipped ({reasons}).")
    return Pool(
        name=name or root.name, root=str(root), items=tuple(items), skipped=tuple(skipped), duplicates=tuple(duplicates)
    )


def against(pool: Pool, dataset: Dataset) -> Pool:
    """The pool without the images the dataset holds: those labelled from this pool, and copies of any labelled
    image (set aside and named). DataError when nothing is left to label."""
    held = {i.sha256: i for i in dataset.items}
    items, duplicates, labelled = [], list(pool.duplicates), []
    for item in pool.items:
        found = held.get(item.sha256)
        if found is None:
            items.append(item)
        elif found.origin == pool.root:
            labelled.append(item.relpath)
        else:
            duplicates.append(
                Skipped(
                    name=item.relpath,
                    reason="duplicate",
                    detail=f"same bytes as {found.relpath} ({found.label}), already labelled in the dataset",
                )
            )
    if not items:
        what = "labelled already" if labelled and len(labelled) == len(pool.items) else \
            "a copy of an image the dataset holds or of another pool image, or labelled already"
        raise DataError(f"Every image of the pool {pool.root} is {what}: there is nothing left to label. Add new "
                        f"images to the pool.")
    return replace(pool, items=tuple(items), duplicates=tuple(duplicates), labelled=tuple(labelled))


@dataclass(frozen=True, kw_only=True)
class Labelled:
    added: tuple[tuple[str, str], ...]  # (pool file, class)
    refused: tuple[tuple[str, str], ...]  # (pool file, why)
    record: str  # the additions file; nothing is written when anything is refused

    def to_json(self) -> dict:
        return {"added": [{"file": f, "class": c} for f, c in self.added],
                "refused": [{"file": f, "why": w} for f, w in self.refused], "record": self.record}


def _refusal(pool: Pool, file: str, label: str) -> str | None:
    if pool.item(file) is None:
        set_aside = next((s for s in (*pool.duplicates, *pool.skipped) if s.name == file), None)
        if file in pool.labelled:
            return None  # labelled before: the new class replaces the old
        return (f"set aside: {set_aside.reason} ({set_aside.detail})" if set_aside
                else f"not an image of the pool {pool.root}")
    try:
        class_name(label)
    except DataError as exc:
        return str(exc)
    return None


def label_pool(dataset: Dataset, pool: Pool, labels: dict[str, str]) -> Labelled:
    """Record pool images with their classes (file -> class) beside the dataset. All or nothing: when a
    file or class is refused, each refusal says why and the record is left as it was."""
    if not labels:
        raise DataError("No labels given: choose a class for at least one image.")
    refused = [(f, why) for f, c in labels.items() if (why := _refusal(pool, f, c))]
    if refused:
        return Labelled(added=(), refused=tuple(refused), record=str(additions_path(dataset.root)))
    by_path = {a.path: a for a in read_additions(dataset.root)}
    root = Path(pool.root)
    for file, label in labels.items():
        path = str(root / file)
        item = pool.item(file)
        sha = item.sha256 if item else by_path[path].sha256
        by_path[path] = Addition(path=path, file=file, pool=pool.root, sha256=sha, label=class_name(label))
    record = write_additions(dataset.root, list(by_path.values()))
    return Labelled(added=tuple((f, class_name(c)) for f, c in labels.items()), refused=(), record=str(record))
