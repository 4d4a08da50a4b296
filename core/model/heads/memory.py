"""Heads that remember the training vectors instead of training: k nearest neighbours and the nearest class
mean. Both can name the training images nearest to a prediction."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.model.heads.base import PREFIX, Calibrated, softmax
from core.model.vectors import unit_rows


class Memory(Calibrated):
    """What both instant heads keep: the training vectors (unit length) and their labels."""

    def remember(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
        self.train, self.labels, self.num_classes = unit_rows(vectors).astype(np.float32), labels, num_classes

    def nearest(self, vectors: np.ndarray, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """(indices into the training set, cosine similarities) of each vector's n nearest training vectors."""
        sims = unit_rows(vectors) @ self.train.T
        order = np.argsort(-sims, axis=1)[:, :n]
        return order, np.take_along_axis(sims, order, axis=1)

    def memory_weights(self) -> dict[str, np.ndarray]:
        return {f"{PREFIX}train": self.train, f"{PREFIX}labels": self.labels.astype(np.int32),
                f"{PREFIX}classes": np.array(self.num_classes), **self.temperature_weights()}

    def load_memory(self, weights: dict[str, np.ndarray]) -> None:
        self.train, self.labels = weights[f"{PREFIX}train"], weights[f"{PREFIX}labels"]
        self.num_classes = int(weights[f"{PREFIX}classes"])
        self.load_temperature(weights)


class NeighbourHead(Memory):
    """k nearest training vectors by cosine similarity; each votes with weight exp(similarity / T), so the
    probabilities are smooth in the input (Grad-CAM has a gradient). k is chosen by leave-one-out."""

    kind = "knn"
    CHOICES = (1, 3, 5, 7, 9, 15)
    TEMPERATURE = 0.05

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> NeighbourHead:
        self.remember(vectors, labels, num_classes)
        sims = self.train @ self.train.T
        np.fill_diagonal(sims, -np.inf)  # leave each image out of its own vote
        choices = [k for k in self.CHOICES if k < len(labels)] or [1]
        scores = [float((self._vote(sims, k).argmax(1) == labels).mean()) for k in choices]
        best = max(scores)
        self.k = max(k for k, score in zip(choices, scores, strict=True) if score == best)  # ties: the smoother vote
        return self

    def _vote(self, sims: np.ndarray, k: int) -> np.ndarray:
        order = np.argsort(-sims, axis=1)[:, :k]
        top = np.take_along_axis(sims, order, axis=1)
        weight = softmax(top / self.TEMPERATURE)
        probs = np.zeros((len(sims), self.num_classes))
        np.add.at(probs, (np.arange(len(sims))[:, None], self.labels[order]), weight)
        return probs

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        from core.model.calibration import scale

        return scale(self._vote(unit_rows(vectors) @ self.train.T, self.k), self.temperature)

    def weights(self) -> dict[str, np.ndarray]:
        return {**self.memory_weights(), f"{PREFIX}k": np.array(self.k)}

    def load(self, weights: dict[str, np.ndarray]) -> NeighbourHead:
        self.load_memory(weights)
        self.k = int(weights[f"{PREFIX}k"])
        return self

    def keras_layer(self) -> Any:
        from core.model.heads.layers import NeighbourVote

        return NeighbourVote(self.train, self.labels, self.num_classes, self.k, self.TEMPERATURE, self.temperature)


class NearestMeanHead(Memory):
    """Each class's mean direction (of unit-length training vectors); probabilities are the softmax of the
    cosine similarities to the means over a temperature."""

    kind = "nearest-mean"
    TEMPERATURE = 0.05

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> NearestMeanHead:
        self.remember(vectors, labels, num_classes)
        self.means = unit_rows(np.stack([self.train[labels == c].mean(0) for c in range(num_classes)]))
        return self

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(unit_rows(vectors) @ self.means.T / (self.TEMPERATURE * self.temperature))

    def weights(self) -> dict[str, np.ndarray]:
        return {**self.memory_weights(), f"{PREFIX}means": self.means}

    def load(self, weights: dict[str, np.ndarray]) -> NearestMeanHead:
        self.load_memory(weights)
        self.means = weights[f"{PREFIX}means"]
        return self

    def keras_layer(self) -> Any:
        """Unit length, cosine scores over the temperature, softmax: built-in layers only."""
        from core.tf import tf_keras

        dense = tf_keras.layers.Dense(len(self.means), activation="softmax", use_bias=False, name="head_means")
        layer = tf_keras.Sequential([tf_keras.layers.UnitNormalization(name="head_unit"), dense], name="classifier")
        layer.build((None, self.means.shape[1]))
        dense.set_weights([(self.means.T / (self.TEMPERATURE * self.temperature)).astype(np.float32)])
        return layer
