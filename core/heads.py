"""Every classifier head behind one interface.

A head maps feature vectors to class probabilities. Each one offers the same four things:
probabilities in numpy (training's evaluation of fixed vectors), a Keras layer that computes the
same probabilities as TensorFlow ops (prediction, Grad-CAM gradients, exports), its weights under
names it owns (the `classifier/` keys of a run's weights.npz), and a way back from those weights.

- dense: dropout + softmax layer, trained by Keras inside the trainer's models (alone on vectors,
  or together with the unfrozen backbone blocks).
- logreg, svm: scikit-learn on standardised vectors (the classic "CNN features + SVM" recipe),
  fitted in one step with `fit`.
"""

from __future__ import annotations

import numpy as np

from core.backbones.tf import tf_keras

PREFIX = "classifier/"


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class DenseHead:
    """Dropout then a softmax layer; `layer` is trained by the trainer's Keras phases."""

    kind = "dense"

    def __init__(self, num_classes: int, dropout: float = 0.0):
        self.layer = tf_keras.Sequential([tf_keras.layers.Dropout(dropout, name="head_dropout"),
                                          tf_keras.layers.Dense(num_classes, activation="softmax",
                                                                name="head_dense")], name="classifier")

    def build(self, feature_dim: int) -> "DenseHead":
        self.layer.build((None, feature_dim))
        return self

    def weights(self) -> dict[str, np.ndarray]:
        return {f"{PREFIX}{i}": w for i, w in enumerate(self.layer.get_weights())}

    def load(self, weights: dict[str, np.ndarray]) -> "DenseHead":
        kernel = weights[f"{PREFIX}0"]
        self.build(kernel.shape[0])
        self.layer.set_weights([kernel, weights[f"{PREFIX}1"]])
        return self

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        kernel, bias = self.layer.get_weights()
        return softmax(vectors @ kernel + bias)

    def keras_layer(self) -> tf_keras.layers.Layer:
        return self.layer


class LinearHead:
    """Logistic regression or linear SVM from scikit-learn on standardised vectors. Probabilities are
    the softmax of the decision scores: for logistic regression this equals predict_proba (binary:
    the halved, mirrored rows make the softmax a sigmoid); for the SVM the scores rank like its
    decisions."""

    def __init__(self, kind: str):
        self.kind = kind
        self.mean = self.scale = self.coef = self.intercept = None
        self._layer = None

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int) -> "LinearHead":
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        scaler = StandardScaler().fit(vectors)
        model = LogisticRegression(max_iter=2000, random_state=seed) if self.kind == "logreg" else \
            LinearSVC(C=1.0, max_iter=5000, random_state=seed)
        model.fit(scaler.transform(vectors), labels)
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1 and num_classes == 2:  # binary: one row of scores for class 1
            coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
        self.mean, self.scale, self.coef, self.intercept = scaler.mean_, scaler.scale_, coef, intercept
        return self

    def weights(self) -> dict[str, np.ndarray]:
        return {f"{PREFIX}mean": self.mean, f"{PREFIX}scale": self.scale, f"{PREFIX}coef": self.coef,
                f"{PREFIX}intercept": self.intercept}

    def load(self, weights: dict[str, np.ndarray]) -> "LinearHead":
        self.mean, self.scale = weights[f"{PREFIX}mean"], weights[f"{PREFIX}scale"]
        self.coef, self.intercept = weights[f"{PREFIX}coef"], weights[f"{PREFIX}intercept"]
        return self

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        return softmax((vectors - self.mean) / self.scale @ self.coef.T + self.intercept)

    def keras_layer(self) -> tf_keras.layers.Layer:
        """Standardise, linear scores, softmax, as Keras layers (built once)."""
        if self._layer is None:
            dense = tf_keras.layers.Dense(len(self.intercept), activation="softmax", name="head_linear")
            self._layer = tf_keras.Sequential([
                tf_keras.layers.Normalization(mean=self.mean, variance=self.scale ** 2, name="head_standardise"),
                dense], name="classifier")
            self._layer.build((None, len(self.mean)))
            dense.set_weights([self.coef.T.astype(np.float32), self.intercept.astype(np.float32)])
        return self._layer


def new_head(kind: str, num_classes: int, dropout: float = 0.0):
    """An untrained head of this kind (config.HEADS names them)."""
    return DenseHead(num_classes, dropout) if kind == "dense" else LinearHead(kind)


def load_head(kind: str, weights: dict[str, np.ndarray], num_classes: int):
    """A trained head back from a run's weights."""
    return new_head(kind, num_classes).load(weights)
