"""Likely label errors: out-of-fold probabilities on the feature vectors, ranked by cleanlab (Northcutt et
al., "Confident learning", 2021). Each flagged image gets the class those probabilities believe instead.

The probabilities are the mean of a linear probe's and a k-nearest-neighbour vote's, over up to 10
stratified folds. On small sets the probe alone, over 5 folds, ranked poorly: with 5% of the labels flipped,
precision of the top k was 0.60 on 200 digits and 0.80 on 1,797; the mean of the two over 10 folds measured
0.90 and 0.93 (BENCHMARKS.md, "Health on crowded sets", which lists what else was tried)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.model.neighbours import nearest_others
from core.model.probe import folds_for, probe_model
from core.model.vectors import unit_rows


@dataclass(frozen=True, kw_only=True)
class RankedLabel:
    index: int  # into the items
    given: int
    suggested: int
    score: float  # cleanlab's label quality (self-confidence): low is suspicious


FOLDS = 10
NEIGHBOURS = 10
LISTED = 3  # neighbours searched per vote counted: those in an image's own fold (about 1 in FOLDS) are skipped


def out_of_fold_probs(vectors: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], seed: int = 0, *,
                      progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Each image's class probabilities from models that never saw it: the mean of a linear probe's and a
    cosine k-nearest-neighbour vote's, over stratified folds (as many as the smallest class allows, at most
    FOLDS). The probe is fitted fold by fold, as scikit-learn's cross_val_predict would, so that
    progress(done, total) can move; the vote reads one neighbour search of every image (core.model.neighbours)
    and counts, for each image, only neighbours outside its own fold: the same vote as a k-NN fitted on the
    other folds, without a search per fold."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    folds_for(labels, classes)  # a clear error for a class too small to hold out
    folds = StratifiedKFold(min(FOLDS, int(np.bincount(labels).min())), shuffle=True, random_state=seed)
    splits = list(folds.split(vectors, labels))
    neighbours = max(1, min(NEIGHBOURS, len(labels) - len(labels) // folds.n_splits - 1))
    probe = np.zeros((len(labels), int(labels.max()) + 1))
    for step, (train, held) in enumerate(splits, 1):
        fitted = clone(probe_model(seed)).fit(vectors[train], labels[train])
        probe[held[:, None], fitted.classes_] = fitted.predict_proba(vectors[held])
        if progress:
            progress(step, len(splits) + 1)
    fold_of = np.empty(len(labels), int)
    for f, (_, held) in enumerate(splits):
        fold_of[held] = f
    vote = _vote(vectors, labels, fold_of, neighbours, probe.shape[1])
    if progress:
        progress(len(splits) + 1, len(splits) + 1)
    return (probe + vote) / 2


def _vote(vectors: np.ndarray, labels: np.ndarray, fold_of: np.ndarray, neighbours: int,
          num_classes: int) -> np.ndarray:
    """Each image's distance-weighted vote of its `neighbours` nearest (cosine) images outside its fold."""
    found = nearest_others(unit_rows(vectors), min(len(labels) - 1, LISTED * neighbours))
    valid = (found.ids >= 0) & (fold_of[np.maximum(found.ids, 0)] != fold_of[:, None])
    counted = valid & (np.cumsum(valid, axis=1) <= neighbours)
    weights = np.where(counted, 1.0 / np.maximum(1.0 - found.similarities, 1e-9), 0.0)
    votes = np.zeros((len(labels), num_classes))
    rows = np.broadcast_to(np.arange(len(labels))[:, None], found.ids.shape)
    np.add.at(votes, (rows[counted], labels[found.ids[counted]]), weights[counted])
    votes[votes.sum(axis=1) == 0] = 1.0  # no neighbour outside its fold (a tiny set): the vote abstains
    return votes / votes.sum(axis=1, keepdims=True)


def label_issues(probs: np.ndarray, labels: np.ndarray) -> list[RankedLabel]:
    """cleanlab's likely label errors, most likely first: every image whose out-of-fold probabilities favour
    another class, ranked by the probability they give its own label. cleanlab's default filter (prune by
    noise rate) flagged fewer, and its top k measured 0.73 against 0.90 on 200 digits (BENCHMARKS.md)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    ranked = find_label_issues(labels, probs, filter_by="predicted_neq_given",
                               return_indices_ranked_by="self_confidence")
    scores = get_label_quality_scores(labels, probs, method="self_confidence")
    return [
        RankedLabel(index=int(i), given=int(labels[i]), suggested=int(probs[i].argmax()), score=float(scores[i]))
        for i in ranked
    ]
