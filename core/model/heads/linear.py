"""Logistic regression and the linear SVM (scikit-learn) on standardised vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.model.heads.base import PREFIX, Calibrated, softmax


class LinearHead(Calibrated):
    """Logistic regression or linear SVM from scikit-learn on standardised vectors. Probabilities are
    the softmax of the decision scores: for logistic regression this equals predict_proba (binary:
    the halved, mirrored rows make the softmax a sigmoid); for the SVM the scores rank like its
    decisions."""

    def __init__(self, kind: str, *, balanced: bool = False):
        self.kind, self.balanced = kind, balanced
        # set by fit or load; no head is used before one of them
        self.mean = self.scale = self.coef = self.intercept = np.empty(0)
        self._layer: Any = None

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> LinearHead:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        scaler = StandardScaler().fit(vectors)
        weight = "balanced" if self.balanced else None
        model = LogisticRegression(max_iter=2000, random_state=seed, class_weight=weight) if self.kind == "logreg" \
            else LinearSVC(C=1.0, max_iter=5000, random_state=seed, class_weight=weight)
        model.fit(scaler.transform(vectors), labels)
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1 and num_classes == 2:  # binary: one row of scores for class 1
            coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
        self.mean, self.scale, self.coef, self.intercept = scaler.mean_, scaler.scale_, coef, intercept
        return self

    def weights(self) -> dict[str, np.ndarray]:
        return {f"{PREFIX}mean": self.mean, f"{PREFIX}scale": self.scale, f"{PREFIX}coef": self.coef,
                f"{PREFIX}intercept": self.intercept, **self.temperature_weights()}

    def load(self, weights: dict[str, np.ndarray]) -> LinearHead:
        self.mean, self.scale = weights[f"{PREFIX}mean"], weights[f"{PREFIX}scale"]
        self.coef, self.intercept = weights[f"{PREFIX}coef"], weights[f"{PREFIX}intercept"]
        self.load_temperature(weights)
        return self

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(((vectors - self.mean) / self.scale @ self.coef.T + self.intercept) / self.temperature)

    def keras_layer(self) -> Any:
        """Standardise, linear scores, softmax, as Keras layers (built once)."""
        from core.tf import tf_keras

        if self._layer is None:
            dense = tf_keras.layers.Dense(len(self.intercept), activation="softmax", name="head_linear")
            self._layer = tf_keras.Sequential([
                tf_keras.layers.Normalization(mean=self.mean, variance=self.scale ** 2, name="head_standardise"),
                dense], name="classifier")
            self._layer.build((None, len(self.mean)))
            dense.set_weights([np.asarray(self.coef.T / self.temperature, np.float32),
                               np.asarray(self.intercept / self.temperature, np.float32)])
        return self._layer
