"""Every classifier head behind one interface.

A head maps feature vectors to class probabilities. Each one offers the same four things:
probabilities in numpy (training's evaluation of fixed vectors), a Keras layer that computes the
same probabilities as TensorFlow ops (Grad-CAM gradients, exports, training's dense head), its weights under
names it owns (the `classifier/` keys of a run's weights.npz), and a way back from those weights.

- dense: dropout + softmax layer, trained by Keras inside the trainer's models (alone on vectors,
  or together with the unfrozen backbone blocks).
- logreg, svm: scikit-learn on standardised vectors (the classic "CNN features + SVM" recipe),
  fitted in one step with `fit`.
- knn, nearest-mean: no training at all: the training vectors themselves (k nearest by cosine, k
  chosen by leave-one-out) or each class's mean direction. Both can name the training images nearest
  to a prediction, which is their explanation of it."""

from __future__ import annotations

import numpy as np

from core.model.heads.base import Head
from core.model.heads.dense import DenseHead, DenseSchedule, balanced_weights
from core.model.heads.linear import LinearHead
from core.model.heads.memory import NearestMeanHead, NeighbourHead

__all__ = ["DenseHead", "DenseSchedule", "Head", "LinearHead", "NearestMeanHead", "NeighbourHead", "balanced_weights",
           "load_head", "new_head"]

INSTANT: dict[str, type[NeighbourHead] | type[NearestMeanHead]] = {"knn": NeighbourHead,
                                                                  "nearest-mean": NearestMeanHead}


def new_head(kind: str, num_classes: int, *, dropout: float = 0.0, balanced: bool = False,
             schedule: DenseSchedule = DenseSchedule()) -> Head:
    """An untrained head of this kind (config.HEADS names them); balanced: classes weighted equally. Dropout
    and the schedule are the dense head's."""
    if kind == "dense":
        return DenseHead(num_classes, dropout, balanced=balanced, schedule=schedule)
    return INSTANT[kind]() if kind in INSTANT else LinearHead(kind, balanced=balanced)


def load_head(kind: str, weights: dict[str, np.ndarray], num_classes: int) -> Head:
    """A trained head back from a run's weights."""
    return new_head(kind, num_classes).load(weights)
