"""Stratified, seeded sampling and train / validation / test splits."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from core.data.dataset import Dataset, ImageItem
from core.errors import DataError


@dataclass(frozen=True, kw_only=True)
class Sample:
    items: tuple[ImageItem, ...]
    per_class: dict  # class -> images taken
    total_available: int

    @property
    def share(self) -> float:
        """Fraction of the full dataset this sample is (the seeds' '300 - 7%')."""
        return len(self.items) / self.total_available if self.total_available else 0.0

    def describe(self) -> str:
        return f"{len(self.items):,} images - {self.share:.0%} of {self.total_available:,}"


@dataclass(frozen=True, kw_only=True)
class Split:
    train: tuple[ImageItem, ...]
    val: tuple[ImageItem, ...]
    test: tuple[ImageItem, ...]
    classes: tuple[str, ...]

    def to_json(self) -> dict:
        def rows(items):  # an image labelled from a pool lives outside the root: its own path
            return [{"relpath": i.relpath, "label": i.label, "sha256": i.sha256,
                     **({"path": i.path, "origin": i.origin} if i.origin else {})} for i in items]

        return {"classes": list(self.classes), "train": rows(self.train), "val": rows(self.val),
                "test": rows(self.test)}

    @staticmethod
    def from_json(obj: dict, root: str) -> Split:
        def items(rows):
            return tuple(
                ImageItem(
                    path=r.get("path") or f"{root}/{r['relpath']}",
                    relpath=r["relpath"],
                    label=r["label"],
                    sha256=r["sha256"],
                    origin=r.get("origin", ""),
                )
                for r in rows
            )

        return Split(
            train=items(obj["train"]), val=items(obj["val"]), test=items(obj["test"]), classes=tuple(obj["classes"])
        )


def _by_class(items) -> dict[str, list[ImageItem]]:
    groups: dict[str, list[ImageItem]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i.relpath):
        groups[item.label].append(item)
    return groups


def sample_text(per_class: int | None, fraction: float | None) -> str:
    """A sample's size in words, as every page and the sidebar say it."""
    if per_class:
        return f"{per_class} images per class"
    return f"{fraction:.0%} of each class" if fraction else "all images"


def sample(dataset: Dataset, per_class: int | None = None, fraction: float | None = None, seed: int = 0) -> Sample:
    """Take `per_class` images of every class (all of a smaller class), or `fraction` of each class."""
    if per_class is not None and fraction is not None:
        raise DataError("Give images per class or a fraction of the dataset, not both.")
    if per_class is not None and per_class < 1:
        raise DataError(f"Images per class must be at least 1, got {per_class}.")
    if fraction is not None and not 0 < fraction <= 1:
        raise DataError(f"The fraction of the dataset must be in (0, 1], got {fraction}.")
    dataset.require_images()
    rng = np.random.default_rng(seed)
    taken: list[ImageItem] = []
    per: dict[str, int] = {}
    for label, group in sorted(_by_class(dataset.items).items()):
        if per_class is not None:
            n = min(per_class, len(group))
        elif fraction is not None:
            n = max(1, int(round(len(group) * fraction)))
        else:
            n = len(group)
        chosen = rng.permutation(len(group))[:n]
        taken.extend(group[i] for i in sorted(chosen))
        per[label] = n
    return Sample(items=tuple(taken), per_class=per, total_available=len(dataset.items))


def connected(n: int, pairs) -> list[list[int]]:
    """The groups of 0..n-1 that the (a, b) pairs join, directly or through others (union-find); each group
    in index order, in order of its first index."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _units(items, groups) -> dict[str, list[list[ImageItem]]]:
    """Images that must stay together (identical bytes, or one near-duplicate group), filed under the class
    most of them carry, so that the split stays stratified."""
    items = sorted(items, key=lambda i: i.relpath)
    position = {item.relpath: n for n, item in enumerate(items)}
    first_of: dict[str, int] = {}
    pairs = [(n, first_of.setdefault(item.sha256, n)) for n, item in enumerate(items)]
    for group in groups or ():
        members = [position[r] for r in group if r in position]
        pairs += [(n, members[0]) for n in members[1:]]
    by_class: dict[str, list[list[ImageItem]]] = defaultdict(list)
    for unit in (list(map(items.__getitem__, g)) for g in connected(len(items), pairs)):
        labels = [i.label for i in unit]
        by_class[max(sorted(set(labels)), key=labels.count)].append(unit)
    return by_class


def split(items, val: float = 0.2, test: float = 0.1, seed: int = 0, groups=None) -> Split:
    """Stratified split; every class keeps at least one training image and, when it has 2+ images
    and val > 0, at least one validation image. Duplicate bytes never cross splits, and neither does
    any group in `groups` (lists of relpaths: near duplicates)."""
    if val < 0 or test < 0 or val + test >= 1:
        raise DataError(f"Validation ({val}) and test ({test}) fractions must be >= 0 and sum to less than 1.")
    labels = _by_class(items)
    small = {label: len(g) for label, g in labels.items() if len(g) < 2}
    if small:
        label, n = next(iter(small.items()))
        raise DataError(f"class {label!r} has {n} image; each class needs at least 2 (one to train on, one to "
                        f"validate). Add images or remove the class.")
    if len(labels) < 2:
        raise DataError(f"Found {len(labels)} class; a classifier needs at least 2 classes.")
    rng = np.random.default_rng(seed)
    train: list[ImageItem] = []
    val_items: list[ImageItem] = []
    test_items: list[ImageItem] = []
    units_by_class = _units(items, groups)
    for label in sorted(units_by_class):
        units = sorted(units_by_class[label], key=lambda u: u[0].relpath)
        order = rng.permutation(len(units))
        n = len(units)
        n_val = int(round(n * val)) if val > 0 else 0
        n_test = int(round(n * test)) if test > 0 else 0
        if val > 0 and n >= 2:
            n_val = max(1, n_val)
        while n_val + n_test > n - 1:  # keep one unit for training
            if n_test > 0:
                n_test -= 1
            else:
                n_val -= 1
        for rank, index in enumerate(order):
            target = val_items if rank < n_val else test_items if rank < n_val + n_test else train
            target.extend(units[index])
    key = lambda i: i.relpath  # noqa: E731
    return Split(
        train=tuple(sorted(train, key=key)),
        val=tuple(sorted(val_items, key=key)),
        test=tuple(sorted(test_items, key=key)),
        classes=tuple(sorted(labels)),
    )


def leak_check(parts: Split, groups, how: str) -> dict:
    """How many near-duplicate groups have images in more than one of train, validation and test; `how` is
    the sentence saying how they were looked for."""
    side = {i.relpath: name for name in ("train", "val", "test") for i in getattr(parts, name)}
    placed = [{side[r] for r in g if r in side} for g in groups or ()]
    placed = [p for p in placed if p]
    across = sum(1 for p in placed if len(p) > 1)
    return {"groups": len(placed), "across": across, "method": how,
            "text": (f"{across} of the sample's {len(placed)} near-duplicate groups fall across train, validation "
                     f"and test (each group is kept on one side). " if placed else
                     "The sample has no near-duplicate groups to keep apart. ") + how}
