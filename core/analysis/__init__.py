"""Transfer analysis: where to cut and how much data, from one forward pass over a sample.

analyze() samples the dataset as a run would, reads every block's pooled output (core.features.blocks),
scores a linear probe on each block (depth) and on growing numbers of images per class from the last
block (size), fits a saturating power law and forecasts 2x and 4x the sampled size. The result is kept
under STUDIO_HOME/analyses/ (the latest per dataset and backbone) for the Analyze page and the report.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from core import paths
from core.analysis import forecast as forecasting
from core.backbones.depth import ALL
from core.backbones.registry import Engine
from core.features.blocks import BlockVectors, block_vectors
from core.fileio import atomic_write_json, read_json
from core.model import probe
from core.progress import Progress, staged


@dataclass(frozen=True, kw_only=True)
class DepthPoint:
    block: str
    accuracy: float
    std: float
    trainable_params: int  # to fine-tune from this block on, with the head


@dataclass(frozen=True, kw_only=True)
class SizePoint:
    per_class: int
    accuracy: float
    std: float


@dataclass(frozen=True, kw_only=True)
class Analysis:
    dataset: str
    backbone: str
    classes: tuple[str, ...]
    per_class: int  # images per class in the sample (the smallest class)
    images: int
    layered: bool  # False: an opaque layer, its final vector only
    engine: Engine | Literal["store"]  # what ran the forward pass (store: nothing had to run)
    computed: int  # images that went through the backbone (the rest came from the feature store)
    depth: tuple[DepthPoint, ...]
    sizes: tuple[SizePoint, ...]
    fit: tuple[float, float, float] | None  # (a, b, c) of a - b * n^-c
    forecast: tuple[forecasting.Forecast, ...]
    seconds: float

    @property
    def best_block(self) -> int:
        return int(np.argmax([p.accuracy for p in self.depth]))

    @property
    def suggested_frozen(self) -> int:
        return suggested_depth(self.depth, layered=self.layered)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "backbone": self.backbone, "classes": list(self.classes),
                "per_class": self.per_class, "images": self.images, "layered": self.layered, "engine": self.engine,
                "computed": self.computed, "depth": [asdict(p) for p in self.depth],
                "sizes": [asdict(p) for p in self.sizes], "fit": list(self.fit) if self.fit else None,
                "forecast": [f.to_json() for f in self.forecast], "best_block": self.depth[self.best_block].block,
                "suggested_frozen": self.suggested_frozen, "seconds": round(self.seconds, 2)}

    @staticmethod
    def from_json(data: dict) -> Analysis:
        return Analysis(
            dataset=data["dataset"],
            backbone=data["backbone"],
            classes=tuple(data["classes"]),
            per_class=data["per_class"],
            images=data["images"],
            layered=data["layered"],
            engine=data["engine"],
            computed=data["computed"],
            depth=tuple(DepthPoint(**p) for p in data["depth"]),
            sizes=tuple(SizePoint(**p) for p in data["sizes"]),
            fit=tuple(data["fit"]) if data["fit"] else None,
            forecast=tuple(forecasting.Forecast(**f) for f in data["forecast"]),
            seconds=data["seconds"],
        )


def suggested_depth(depth: tuple[DepthPoint, ...], *, layered: bool) -> int:
    """Feature extraction (ALL) unless an earlier block beats the last by more than the last's spread: then
    fine-tune every block after the best one."""
    best = int(np.argmax([p.accuracy for p in depth]))
    if depth[best].accuracy - depth[-1].accuracy <= max(depth[-1].std, 0.01) or not layered:
        return ALL
    return best + 1


def depth_points(vectors: BlockVectors, labels: np.ndarray, seed: int,
                 progress: Progress | None) -> tuple[DepthPoint, ...]:
    """A cross-validated probe on every block's vectors, input side first."""
    layout, classes = vectors.layout, int(labels.max()) + 1
    scores = probe.depth_scores(vectors.block, len(layout.blocks), labels, seed,
                                staged(progress, "depth"))
    return tuple(DepthPoint(block=name, accuracy=s.accuracy, std=s.std, trainable_params=layout.cost_from(i, classes))
                 for i, (name, s) in enumerate(zip(layout.blocks, scores, strict=True)))


def _sizes(vectors: np.ndarray, labels: np.ndarray, per_class: int, seed: int, progress: Progress | None):
    scores = probe.size_scores(vectors, labels, seed, progress=staged(progress, "sizes"))
    fit, predicted = forecasting.forecast(scores, [2 * per_class, 4 * per_class], seed)
    points = tuple(SizePoint(per_class=n, accuracy=float(np.mean(s)), std=float(np.std(s))) for n, s in scores.items())
    return points, (fit.a, fit.b, fit.c) if fit else None, tuple(predicted)


def sampled(spec: str, *, per_class: int | None, fraction: float | None, seed: int, progress: Progress | None):
    """(dataset, items, class names, labels) of the sample a run with these settings would draw; a sample too
    small to probe is refused before any forward pass."""
    from core.data.sampling import sample
    from core.data.sources import load_dataset

    dataset = load_dataset(spec, progress=staged(progress, "scan"))
    items = sample(dataset, per_class=per_class, fraction=fraction, seed=seed).items
    classes = tuple(sorted({i.label for i in items}))
    labels = np.array([classes.index(i.label) for i in items])
    probe.folds_for(labels, classes)
    return dataset, items, classes, labels


def analyze(spec: str, backbone: str, per_class: int | None = None, fraction: float | None = None, seed: int = 0,
            image_size: int | None = None, progress: Progress | None = None) -> Analysis:
    """The whole analysis of a dataset spec (demo name, folder or zip), as the CLI and the page run it."""
    start = time.perf_counter()
    dataset, items, classes, labels = sampled(spec, per_class=per_class, fraction=fraction, seed=seed,
                                              progress=progress)
    vectors = block_vectors(items, backbone, image_size, progress)
    depth = depth_points(vectors, labels, seed, progress)
    smallest = int(np.bincount(labels).min())
    sizes, fit, predicted = _sizes(vectors.block(len(vectors.layout.blocks) - 1), labels, smallest, seed, progress)
    analysis = Analysis(
        dataset=dataset.name,
        backbone=backbone,
        classes=classes,
        per_class=smallest,
        images=len(items),
        layered=vectors.layout.layered,
        engine=vectors.engine,
        computed=vectors.computed,
        depth=depth,
        sizes=sizes,
        fit=fit,
        forecast=predicted,
        seconds=time.perf_counter() - start,
    )
    save(analysis, spec)
    return analysis


def saved_path(spec: str, kind: str) -> Path:
    """Where the latest analysis of this kind (a backbone's name, or "compare") of a dataset spec is kept."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("_")[-80:] or "dataset"
    return paths.analyses_dir() / f"{slug}--{kind}.json"


def save(analysis: Analysis, spec: str) -> None:
    atomic_write_json(saved_path(spec, analysis.backbone), {"spec": spec, **analysis.to_json()})


def latest(spec: str, backbone: str) -> Analysis | None:
    """The last analysis of this dataset spec and backbone, or None (none yet, or unreadable)."""
    try:
        return Analysis.from_json(read_json(saved_path(spec, backbone)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
