"""Which pool images to label next: the pool embedded once through the feature store, the current model's
guesses, and a ranking (core.model.acquisition) with a reason for each pick.

The current model is a run's, when one is named (a feature-extraction run's head reads the stored vectors; a
fine-tuned run computes its own), else the default head fitted on the labelled images' stored vectors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from core.backbones.depth import ALL
from core.backbones.registry import DEFAULT_BACKBONE
from core.data.arrays import array_chunks
from core.data.dataset import Dataset
from core.data.pool import Pool, against
from core.data.sources import load_dataset, load_pool
from core.errors import DataError
from core.features.blocks import block_vectors
from core.inference.predict import RunModel, model_of
from core.model.acquisition import Ranking, rank
from core.model.rejection import RejectionRule
from core.progress import Progress, staged
from core.runs.store import Run
from core.training.config import TrainConfig

DEFAULT_PICKS = 20
STREAM = 256  # pool images decoded at a time for a fine-tuned run's own vectors


@dataclass(frozen=True, kw_only=True)
class Suggestions:
    picks: tuple[dict, ...]  # {file, path, score, reason, guess, probability}, best first
    new_class_candidates: tuple[dict, ...]  # {file, path, guess, probability}: far from every labelled class
    duplicates: tuple[dict, ...]  # {file, why}: set aside
    skipped: tuple[dict, ...]  # {file, reason}: not images, unsafe zip members, special files, ...
    strategy: str
    seconds: float
    labelled: int  # images the model learnt from
    pool: str
    model: str  # what guessed: the run, or the default head on the labelled images

    def to_json(self) -> dict:
        return {"picks": list(self.picks), "new_class_candidates": [c["file"] for c in self.new_class_candidates],
                "duplicates": [d["file"] for d in self.duplicates], "skipped": list(self.skipped),
                "strategy": self.strategy, "seconds": round(self.seconds, 2), "labelled": self.labelled,
                "pool": self.pool, "model": self.model}


def suggest(data: str, pool_spec: str, *, run: Run | None = None, n: int = DEFAULT_PICKS, strategy: str = "auto",
            seed: int = 0, progress: Progress | None = None) -> Suggestions:
    """Which unlabelled images to label next.

    Args:
        data: the labelled dataset (a folder, a demo name or a zip).
        pool_spec: the folder of unlabelled images.
        run: a finished run whose head and rule judge the pool; None fits the default head on the labelled
            images.
        n: how many to pick (at least 1).
        strategy: "auto", "uncertainty", "diverse" or "random" (core.model.acquisition).
        seed: for the random and diverse strategies.
        progress: (stage, done, total) through dataset, pool, features and ranking.

    Returns:
        Suggestions: the picks (file, the model's guess, a reason), the images set apart as a possible new class,
        the files skipped with why, and the strategy that ran.

    Raises:
        DataError: no labelled images, an empty pool, or n below 1.
    """
    start, tell = time.monotonic(), progress or (lambda stage, done, total: None)
    if n < 1:
        raise DataError(f"Ask for at least one image to label, got {n}.")
    tell("dataset", 0, 0)  # each step names itself as it starts, before its first count
    dataset = load_dataset(data, progress=staged(progress, "dataset"))
    if not dataset.items:
        raise DataError(f"{data} has no labelled images: label a few of every class first.")
    tell("pool", 0, 0)
    pool = against(load_pool(pool_spec, progress=staged(progress, "pool")), dataset)
    tell("features", 0, 0)
    model = model_of(run) if run else None
    backbone, size = (model.run.config.backbone, model.run.config.image_size) if model else (DEFAULT_BACKBONE, None)
    # apart: the labelled images' vectors usually come back whole from one pack (an earlier check stored them)
    labelled = block_vectors(dataset.items, backbone, size, progress).final
    unlabelled = block_vectors(pool.items, backbone, size, progress).final
    classes = model.classes if model else dataset.classes
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index.get(i.label, -1) for i in dataset.items])
    tell("guesses", 0, 0)
    probs, rule = _guesses(model, dataset, pool, labelled, labels, unlabelled, seed)
    known = labels >= 0  # a class added after the run: the run cannot guess it
    tell("ranking", 0, 0)
    ranking = rank(unlabelled, labelled[known], labels[known], probs, classes, n=n, strategy=strategy, seed=seed,
                   rule=rule)
    return _suggestions(ranking, pool, probs, classes, time.monotonic() - start, len(dataset.items),
                        f"run {run.id}" if run else "the default head on your labelled images")



def _guesses(model: RunModel | None, dataset: Dataset, pool: Pool, labelled: np.ndarray, labels: np.ndarray,
             unlabelled: np.ndarray, seed: int) -> tuple[np.ndarray, RejectionRule | None]:
    """(the model's probabilities on the pool, the rule that sets images apart: the run's where it reads the
    same vectors the ranking does, else None for one fitted on the labelled vectors)."""
    if model is None:
        head = TrainConfig(seed=seed).new_head(len(dataset.classes)).fit(labelled, labels, len(dataset.classes), seed)
        return head.probs(unlabelled), None
    if model.run.config.frozen_blocks == ALL:
        return model.head.probs(unlabelled), model.rule
    # Fine-tuned: its own vectors, STREAM images decoded at a time (a 10,000-image pool is 1.5 GB decoded).
    parts = [model.classify(arrays)[0] for _, arrays in array_chunks(pool.items, model.size, STREAM)]
    return (np.concatenate(parts) if parts else np.zeros((0, len(dataset.classes)))), None


def _suggestions(ranking: Ranking, pool: Pool, probs: np.ndarray, classes: tuple[str, ...], seconds: float,
                 labelled: int, model: str) -> Suggestions:
    def guessed(i: int) -> dict:
        item, best = pool.items[i], int(probs[i].argmax())
        return {"file": item.relpath, "path": item.path, "guess": classes[best],
                "probability": round(float(probs[i, best]), 4)}

    picks = tuple({**guessed(p.index), "score": p.score, "reason": p.reason} for p in ranking.picks)
    new_class = tuple(guessed(i) for i in ranking.new_class)
    duplicates = tuple({"file": d.name, "why": d.detail} for d in pool.duplicates)
    skipped = tuple({"file": s.name, "reason": f"{s.reason} ({s.detail})" if s.detail else s.reason}
                    for s in pool.skipped)
    return Suggestions(
        picks=picks,
        new_class_candidates=new_class,
        duplicates=duplicates,
        skipped=skipped,
        strategy=ranking.strategy,
        seconds=seconds,
        labelled=labelled,
        pool=pool.root,
        model=model,
    )
