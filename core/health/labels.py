"""Likely label errors: out-of-fold probabilities of a linear probe on the feature vectors, ranked by
cleanlab (Northcutt et al., "Confident learning", 2021). Each flagged image gets the class the probe
believes instead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.model.probe import folds_for, probe_model


@dataclass(frozen=True)
class LabelIssue:
    index: int  # into the items
    given: int
    suggested: int
    score: float  # cleanlab's label quality (self-confidence): low is suspicious


def out_of_fold_probs(vectors: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], seed: int = 0) -> np.ndarray:
    """Each image's class probabilities from a probe that never saw it (stratified k-fold)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(folds_for(labels, classes), shuffle=True, random_state=seed)
    return cross_val_predict(probe_model(seed), vectors, labels, cv=folds, method="predict_proba")


def label_issues(probs: np.ndarray, labels: np.ndarray) -> list[LabelIssue]:
    """cleanlab's likely label errors, most likely first."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    ranked = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    scores = get_label_quality_scores(labels, probs, method="self_confidence")
    return [LabelIssue(int(i), int(labels[i]), int(probs[i].argmax()), float(scores[i])) for i in ranked]
