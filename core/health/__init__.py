"""Dataset health, before any accuracy is reported: likely label errors, near duplicates, class
imbalance and odd images, from the feature store's vectors (core.features.blocks) and one small
look at every image. The latest result per dataset and backbone is kept under STUDIO_HOME/health/.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core import paths, rates
from core.data.dataset import IMBALANCE_WARNING_RATIO, Dataset, ImageItem
from core.errors import DataError, StudioError
from core.fileio import atomic_write_json, read_json
from core.health.duplicates import near_duplicates
from core.health.labels import label_issues, out_of_fold_probs
from core.health.odd import odd_reasons
from core.health.pixels import CROPS, THUMB, look_at
from core.progress import Progress, staged


@dataclass(frozen=True, kw_only=True)
class LabelIssue:
    """An image whose folder's class the checks doubt: the class it was given, the one they believe, and
    cleanlab's label quality (low is suspicious)."""
    file: str
    given: str
    suggested: str
    score: float


@dataclass(frozen=True, kw_only=True)
class OddImage:
    """An image unlike a photo of the task (blank, nearly one colour, tiny, extreme shape): why."""
    file: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Health:
    dataset: str
    root: str
    backbone: str
    classes: tuple[str, ...]
    images: int
    label_issues: tuple[LabelIssue, ...]  # most likely first
    label_check: str  # a sentence: how the labels were checked, or why they could not be
    near_duplicates: tuple[tuple[str, ...], ...]  # groups of files
    duplicate_check: str
    imbalance: dict
    odd_images: tuple[OddImage, ...]
    engine: str
    computed: int  # images that went through the backbone (the rest came from the feature store)
    seconds: float
    corrections: int = 0  # the user's corrections in effect when it was checked
    scanned: int = 0  # images the folder held, before the corrections excluded any

    def to_json(self) -> dict:
        data = asdict(self)
        data["near_duplicates"] = [list(g) for g in self.near_duplicates]
        return data

    @staticmethod
    def from_json(data: dict) -> Health:
        data = {**data, "classes": tuple(data["classes"]),
                "label_issues": tuple(LabelIssue(**x) for x in data["label_issues"]),
                "near_duplicates": tuple(tuple(g) for g in data["near_duplicates"]),
                "odd_images": tuple(OddImage(**x) for x in data["odd_images"])}
        return Health(**data)


def scanned_images(dataset: Dataset) -> int:
    """The dataset's usable images before the user's exclusions."""
    return len(dataset) + sum(a["action"] == "exclude" for a in dataset.overrides.get("applied", []))


def imbalance(counts: dict[str, int]) -> dict:
    present = {c: n for c, n in counts.items() if n}
    ratio = max(present.values()) / min(present.values()) if present else 1.0
    warn = ratio > IMBALANCE_WARNING_RATIO
    text = (f"The largest class has {ratio:.1f}x the images of the smallest: look at balanced accuracy and per-class "
            f"recall, and consider class weighting." if warn else f"Classes are balanced within {ratio:.1f}x.")
    return {"counts": counts, "ratio": round(ratio, 3), "warning": warn, "threshold": IMBALANCE_WARNING_RATIO,
            "text": text}


def _vectors(items: Sequence[ImageItem], backbone: str, image_size: int | None, progress: Progress | None):
    from core.features.blocks import block_vectors

    found = block_vectors(items, backbone, image_size, progress)
    return found.final, found.engine, found.computed


def _input_size(backbone: str, image_size: int | None) -> int | None:
    """The size the scan caches photos at for this backbone (None if it is not known here)."""
    from core.backbones import get_spec

    try:
        return image_size or get_spec(backbone).input_size
    except StudioError:
        return None


def _cheap_vectors(items: Sequence[ImageItem], backbone: str, image_size: int | None) -> np.ndarray | None:
    """Feature vectors from the store or a converted (TFLite) file; None rather than build the backbone in
    TensorFlow, or when the backbone cannot load here."""
    from core.features.blocks import block_vectors

    try:
        found = block_vectors(items, backbone, image_size, tensorflow=False)
    except StudioError:
        return None
    return None if found is None else found.final


@dataclass(frozen=True, kw_only=True)
class DuplicateSearch:
    groups: tuple[tuple[int, ...], ...]  # groups of item indices
    how: str  # a sentence on how they were looked for
    looks: list  # each item's look (thumbnails), None where it could not be read
    with_vectors: bool  # the feature vectors took part (else thumbnails alone)


def near_duplicate_groups(items: Sequence[ImageItem], backbone: str, image_size: int | None = None,
                          vectors: np.ndarray | None = None, progress: Progress | None = None) -> DuplicateSearch:
    """The near-duplicate groups and how they were found. Without vectors given, those the feature store or a
    converted file can give (a run's split: it never builds a TensorFlow backbone for this); failing those,
    thumbnails alone."""
    if not items:
        return DuplicateSearch(groups=(), how="No images to compare for near duplicates.", looks=[],
                               with_vectors=False)
    how = "thumbnails and feature vectors"
    if vectors is None:  # first: computing them caches each photo's array, which the looks then read
        vectors = _cheap_vectors(items, backbone, image_size)
        if vectors is None:
            how = "thumbnails alone (this backbone has no converted model or stored features)"
    looks = look_at(items, staged(progress, "look"),
                    _input_size(backbone, image_size))
    blank = np.zeros((len(CROPS), THUMB * THUMB), np.float32)
    thumbs = np.stack([x.thumb if x is not None else blank for x in looks])
    found = near_duplicates(thumbs, vectors)
    how = f"Near duplicates were looked for by comparing {how}, each pair against both images' usual neighbours."
    if found.crowded:
        how += (f" This set is crowded (the typical image's nearest neighbour is at {found.median_nearest:.2f} "
                f"similarity), so only pairs far closer than their images' usual neighbours count.")
    return DuplicateSearch(groups=found.groups, how=how, looks=looks, with_vectors=vectors is not None)


HEALTH_FIRST, HEALTH_AGAIN = "health, vectors computed", "health, vectors stored"  # core.rates kinds, per image


def estimate(images: int, *, first_time: bool) -> rates.Estimate:
    """How long a health check of this many images takes here (a first guess before one was measured)."""
    return rates.estimate(HEALTH_FIRST if first_time else HEALTH_AGAIN, units=images,
                          guess_per_unit=0.1 if first_time else 0.02)


def check_health(dataset: Dataset, backbone: str, *, image_size: int | None = None, seed: int = 0,
                 progress: Progress | None = None) -> Health:
    """Everything that can be wrong with a dataset before training on it.

    Args:
        dataset: the scanned images (core.data.sources.load_dataset).
        backbone: the registry name whose feature vectors the duplicate and label checks read.
        image_size: the input size (None: the backbone's own).
        seed: for the label check's folds.
        progress: (stage, done, total) as the vectors, the looks and the checks go.

    Returns:
        Health: class counts and imbalance, near-duplicate groups (and how they were looked for), likely label
        issues (LabelIssue records) and odd images (OddImage records), with how long it took.
    """
    start = time.monotonic()
    items = list(dataset.require_images().items)
    vectors, engine, computed = _vectors(items, backbone, image_size, progress)
    search = near_duplicate_groups(items, backbone, image_size, vectors, progress)
    groups, duplicate_check, looks = search.groups, search.how, search.looks
    issues, label_check = _label_issues(items, vectors, dataset.classes, seed, progress)
    odd = odd_reasons(looks)
    rates.record(HEALTH_FIRST if computed else HEALTH_AGAIN, seconds=time.monotonic() - start, units=len(items))
    return Health(
        dataset=dataset.name,
        root=dataset.root,
        backbone=backbone,
        classes=dataset.classes,
        images=len(items),
        label_issues=tuple(issues),
        label_check=label_check,
        near_duplicates=tuple(tuple(items[i].relpath for i in g) for g in groups),
        duplicate_check=duplicate_check,
        imbalance=imbalance(dataset.counts()),
        odd_images=tuple(OddImage(file=items[i].relpath, reason=r) for i, r in odd.items()),
        engine=engine,
        computed=computed,
        seconds=round(time.monotonic() - start, 2),
        corrections=len(dataset.overrides.get("applied", [])),
        scanned=scanned_images(dataset),
    )


def _label_issues(items, vectors, classes, seed, progress) -> tuple[list[LabelIssue], str]:
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[i.label] for i in items])
    if progress:
        progress("labels", 0, 0)
    try:
        probs = out_of_fold_probs(vectors, labels, classes, seed,
                                  progress=staged(progress, "labels"))
    except DataError as exc:
        return [], f"Labels were not checked: {exc}"
    found = label_issues(probs, labels)
    rows = [LabelIssue(file=items[x.index].relpath, given=classes[x.given], suggested=classes[x.suggested],
                       score=float(f"{x.score:.3g}")) for x in found]
    return rows, ("Labels were checked with out-of-fold probabilities of a linear probe and a nearest-neighbour "
                  "vote on the feature vectors, ranked by cleanlab's find_label_issues.")


def _key(root: str, backbone: str) -> str:
    return f"{Path(root).name[:40]}-{hashlib.sha256(f'{root}|{backbone}'.encode()).hexdigest()[:12]}"


def save(health: Health) -> Path:
    path = paths.health_dir() / f"{_key(health.root, health.backbone)}.json"
    atomic_write_json(path, health.to_json())
    return path


def latest(root: str, backbone: str) -> Health | None:
    """The last health check of this dataset folder with this backbone, if one was kept."""
    try:
        return Health.from_json(read_json(paths.health_dir() / f"{_key(root, backbone)}.json"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
