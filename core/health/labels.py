"""Likely label errors: out-of-fold probabilities on the feature vectors, ranked by cleanlab (Northcutt et
al., "Confident learning", 2021). Each flagged image gets the class those probabilities believe instead.

The probabilities are the mean of a linear probe's and a k-nearest-neighbour vote's, over up to 10
stratified folds. On small sets the probe alone, over 5 folds, ranked poorly: with 5% of the labels flipped,
precision of the top k was 0.60 on 200 digits and 0.80 on 1,797; the mean of the two over 10 folds measured
0.90 and 0.93 (BENCHMARKS.md, "Health on crowded sets", which lists what else was tried)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.model.probe import folds_for, probe_model


@dataclass(frozen=True)
class LabelIssue:
    index: int  # into the items
    given: int
    suggested: int
    score: float  # cleanlab's label quality (self-confidence): low is suspicious


FOLDS = 10
NEIGHBOURS = 10


def out_of_fold_probs(vectors: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], seed: int = 0, *,
                      progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Each image's class probabilities from models that never saw it: the mean of a linear probe's and a
    cosine k-nearest-neighbour vote's, over stratified folds (as many as the smallest class allows, at most
    FOLDS). What scikit-learn's cross_val_predict gives, fold by fold so that progress(done, total) can move."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    folds_for(labels, classes)  # a clear error for a class too small to hold out
    folds = StratifiedKFold(min(FOLDS, int(np.bincount(labels).min())), shuffle=True, random_state=seed)
    neighbours = max(1, min(NEIGHBOURS, len(labels) - len(labels) // folds.n_splits - 1))
    splits, models = list(folds.split(vectors, labels)), (probe_model(seed), _vote(neighbours))
    probs = np.zeros((len(models), len(labels), int(labels.max()) + 1))
    for step, (m, (train, held)) in enumerate(((m, split) for m in range(len(models)) for split in splits), 1):
        fitted = clone(models[m]).fit(vectors[train], labels[train])
        probs[m][held[:, None], fitted.classes_] = fitted.predict_proba(vectors[held])
        if progress:
            progress(step, len(models) * len(splits))
    return probs.mean(axis=0)


def _vote(neighbours: int):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    return make_pipeline(Normalizer(), KNeighborsClassifier(neighbours, weights="distance", metric="cosine"))


def label_issues(probs: np.ndarray, labels: np.ndarray) -> list[LabelIssue]:
    """cleanlab's likely label errors, most likely first: every image whose out-of-fold probabilities favour
    another class, ranked by the probability they give its own label. cleanlab's default filter (prune by
    noise rate) flagged fewer, and its top k measured 0.73 against 0.90 on 200 digits (BENCHMARKS.md)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    ranked = find_label_issues(labels, probs, filter_by="predicted_neq_given",
                               return_indices_ranked_by="self_confidence")
    scores = get_label_quality_scores(labels, probs, method="self_confidence")
    return [LabelIssue(int(i), int(labels[i]), int(probs[i].argmax()), float(scores[i])) for i in ranked]
