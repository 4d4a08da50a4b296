"""Linear probes on fixed vectors: how well each block's features separate the classes (Yosinski et
al. 2014 cut a network at every depth the same way), and how accuracy grows with images per class.

A probe is standardised logistic regression, scored out of sample: stratified k-fold for the depth
probe, held-out images for each point of the data-size curve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.data.parallel import parallel_map
from core.errors import DataError

MAX_FOLDS = 5
DRAWS = 5  # random draws per size on the data-size curve
SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def probe_model(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, tol=1e-3, random_state=seed))


@dataclass(frozen=True, kw_only=True)
class Score:
    accuracy: float
    std: float


def folds_for(labels: np.ndarray, classes: tuple[str, ...] | None = None) -> int:
    """Stratified folds the smallest class allows, at most MAX_FOLDS; a class of one image cannot be scored."""
    counts = np.bincount(labels) if len(labels) else np.zeros(1, int)
    smallest = int(counts.min())
    if len(np.unique(labels)) < 2 or smallest < 2:
        name = f" ('{classes[int(counts.argmin())]}')" if classes and len(np.unique(labels)) >= 2 else ""
        raise DataError(f"A probe needs at least two classes with at least 2 images each; the smallest class "
                        f"here{name} has {smallest}. Add images or sample more per class.")
    return min(MAX_FOLDS, smallest)


def _folds(labels: np.ndarray, seed: int):
    """The stratified folds every probe of these labels and seed uses, whatever the vectors."""
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(folds_for(labels), shuffle=True, random_state=seed)


def cross_validated(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> Score:
    """Mean and std accuracy of the probe over stratified folds."""
    from sklearn.model_selection import cross_val_score

    scores = cross_val_score(probe_model(seed), vectors, labels, cv=_folds(labels, seed))
    return Score(accuracy=float(scores.mean()), std=float(scores.std()))


def neighbour_score(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> Score:
    """Mean and std accuracy of the studio's k-NN head (cosine, k by leave-one-out) over the same folds."""
    from core.model.heads.memory import NeighbourHead

    classes, scores = int(labels.max()) + 1, []
    for train, held in _folds(labels, seed).split(vectors, labels):
        head = NeighbourHead().fit(vectors[train], labels[train], classes, seed)
        scores.append(float((head.probs(vectors[held]).argmax(1) == labels[held]).mean()))
    return Score(accuracy=float(np.mean(scores)), std=float(np.std(scores)))


def depth_scores(block_vectors: Callable[[int], np.ndarray], blocks: int, labels: np.ndarray, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> list[Score]:
    """One cross-validated score per block, input side first (blocks on every core: the solver releases
    the GIL for most of its work)."""
    return list(parallel_map(lambda i: cross_validated(block_vectors(i), labels, seed), range(blocks), progress))


def curve_sizes(labels: np.ndarray) -> list[int]:
    """Training images per class to try: the SIZES that leave at least one held-out image in every class
    (and a fifth of the smallest class), plus that largest size itself."""
    smallest = int(np.bincount(labels).min())
    largest = smallest - max(1, smallest // 5)
    sizes = [n for n in SIZES if n <= largest]
    return sizes + ([largest] if largest >= 1 and largest not in sizes else [])


def _draw(labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n random training images of every class; the rest held out."""
    train = np.concatenate([rng.choice(np.flatnonzero(labels == c), n, replace=False) for c in np.unique(labels)])
    held = np.setdiff1d(np.arange(len(labels)), train)
    return train, held


def size_scores(vectors: np.ndarray, labels: np.ndarray, seed: int = 0, draws: int = DRAWS,
                progress: Callable[[int, int], None] | None = None) -> dict[int, list[float]]:
    """Held-out accuracy of the probe at each size of curve_sizes, over `draws` random draws each."""
    rng = np.random.default_rng(seed)
    cases = [(n, *_draw(labels, n, rng)) for n in curve_sizes(labels) for _ in range(draws)]

    def score(case) -> float:
        _, train, held = case
        model = probe_model(seed).fit(vectors[train], labels[train])
        return float((model.predict(vectors[held]) == labels[held]).mean())

    out: dict[int, list[float]] = {}
    for (n, _, _), accuracy in zip(cases, parallel_map(score, cases, progress), strict=True):
        out.setdefault(n, []).append(accuracy)
    return out
