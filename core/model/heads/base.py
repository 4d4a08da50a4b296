"""What every head shares: the softmax, the names its weights go under, and temperature scaling."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

PREFIX = "classifier/"
TEMPERATURE_KEY = f"{PREFIX}temperature"


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Calibrated:
    """Temperature scaling (core.model.calibration), fitted after training: every head's scores are divided by
    `temperature` before its softmax, in numpy and in its Keras layer alike. Saved beside the weights."""

    temperature = 1.0

    def calibrate(self, temperature: float) -> None:
        self.temperature = float(temperature)

    def temperature_weights(self) -> dict[str, np.ndarray]:
        return {TEMPERATURE_KEY: np.array(self.temperature)}

    def load_temperature(self, weights: dict[str, np.ndarray]) -> None:
        """A run trained before calibration existed has no temperature: 1."""
        self.calibrate(float(weights.get(TEMPERATURE_KEY, 1.0)))


@runtime_checkable
class Head(Protocol):
    """What every head offers (dense, logreg, svm, knn, nearest-mean); `new_head` and `load_head` return one.

    fit: train on feature vectors (labels 0..num_classes-1), returning itself. probs: class probabilities for
    vectors, in numpy. keras_layer: the same probabilities as TensorFlow ops (Grad-CAM, exports). weights and
    load: its trained state under names starting with PREFIX (a run's weights.npz), and back. calibrate: set the
    temperature its scores are divided by."""
    temperature: float

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> Head: ...

    def probs(self, vectors: np.ndarray) -> np.ndarray: ...

    def keras_layer(self) -> Any: ...

    def weights(self) -> dict[str, np.ndarray]: ...

    def load(self, weights: dict[str, np.ndarray]) -> Head: ...

    def calibrate(self, temperature: float) -> None: ...
