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
  to a prediction, which is their explanation of it.
"""

from __future__ import annotations

import numpy as np

from core.vectors import unit_rows

PREFIX = "classifier/"
TEMPERATURE_KEY = f"{PREFIX}temperature"


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _Calibrated:
    """Temperature scaling (core.calibration), fitted after training: every head's scores are divided by
    `temperature` before its softmax, in numpy and in its Keras layer alike. Saved beside the weights."""

    temperature = 1.0

    def calibrate(self, temperature: float) -> None:
        self.temperature = float(temperature)

    def temperature_weights(self) -> dict[str, np.ndarray]:
        return {TEMPERATURE_KEY: np.array(self.temperature)}

    def load_temperature(self, weights: dict[str, np.ndarray]) -> None:
        """A run trained before calibration existed has no temperature: 1."""
        self.calibrate(float(weights.get(TEMPERATURE_KEY, 1.0)))


class DenseHead(_Calibrated):
    """Dropout then a softmax layer; `layer` is trained by the trainer's Keras phases. Calibrating folds the
    temperature into the layer's weights (softmax(z / T) is a softmax of a layer scaled by 1 / T). A head
    loaded from a run keeps numpy weights and builds its Keras layer only when asked, so prediction from
    vectors never loads TensorFlow."""

    kind = "dense"

    def __init__(self, num_classes: int, dropout: float = 0.0):
        self.num_classes, self.dropout = num_classes, dropout
        self._layer = None
        self._loaded: list[np.ndarray] | None = None  # [kernel, bias] until a Keras layer takes them over

    @property
    def layer(self):
        if self._layer is None:
            from core.tf import tf_keras

            self._layer = tf_keras.Sequential([tf_keras.layers.Dropout(self.dropout, name="head_dropout"),
                                               tf_keras.layers.Dense(self.num_classes, activation="softmax",
                                                                     name="head_dense")], name="classifier")
            if self._loaded is not None:
                self._layer.build((None, self._loaded[0].shape[0]))
                self._layer.set_weights(self._loaded)
                self._loaded = None
        return self._layer

    def build(self, feature_dim: int) -> "DenseHead":
        self.layer.build((None, feature_dim))
        return self

    def _kernel_bias(self) -> list[np.ndarray]:
        return self._loaded if self._layer is None else self._layer.get_weights()

    def _set_kernel_bias(self, weights: list[np.ndarray]) -> None:
        if self._layer is None:
            self._loaded = [np.asarray(w, np.float32) for w in weights]
        else:
            self._layer.set_weights(weights)

    def calibrate(self, temperature: float) -> None:
        kernel, bias = (w * self.temperature for w in self._kernel_bias())
        super().calibrate(temperature)
        self._set_kernel_bias([kernel / self.temperature, bias / self.temperature])

    def weights(self) -> dict[str, np.ndarray]:
        """The trained weights (the temperature unfolded) and the temperature."""
        raw = {f"{PREFIX}{i}": w * self.temperature for i, w in enumerate(self._kernel_bias())}
        return {**raw, **self.temperature_weights()}

    def load(self, weights: dict[str, np.ndarray]) -> "DenseHead":
        self._set_kernel_bias([weights[f"{PREFIX}0"], weights[f"{PREFIX}1"]])
        self.load_temperature(weights)
        return self

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        kernel, bias = self._kernel_bias()
        return softmax(vectors @ kernel + bias)

    def keras_layer(self):
        return self.layer


class LinearHead(_Calibrated):
    """Logistic regression or linear SVM from scikit-learn on standardised vectors. Probabilities are
    the softmax of the decision scores: for logistic regression this equals predict_proba (binary:
    the halved, mirrored rows make the softmax a sigmoid); for the SVM the scores rank like its
    decisions."""

    def __init__(self, kind: str, balanced: bool = False):
        self.kind, self.balanced = kind, balanced
        self.mean = self.scale = self.coef = self.intercept = None
        self._layer = None

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int) -> "LinearHead":
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

    def load(self, weights: dict[str, np.ndarray]) -> "LinearHead":
        self.mean, self.scale = weights[f"{PREFIX}mean"], weights[f"{PREFIX}scale"]
        self.coef, self.intercept = weights[f"{PREFIX}coef"], weights[f"{PREFIX}intercept"]
        self.load_temperature(weights)
        return self

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(((vectors - self.mean) / self.scale @ self.coef.T + self.intercept) / self.temperature)

    def keras_layer(self):
        """Standardise, linear scores, softmax, as Keras layers (built once)."""
        from core.tf import tf_keras

        if self._layer is None:
            dense = tf_keras.layers.Dense(len(self.intercept), activation="softmax", name="head_linear")
            self._layer = tf_keras.Sequential([
                tf_keras.layers.Normalization(mean=self.mean, variance=self.scale ** 2, name="head_standardise"),
                dense], name="classifier")
            self._layer.build((None, len(self.mean)))
            dense.set_weights([(self.coef.T / self.temperature).astype(np.float32),
                               (self.intercept / self.temperature).astype(np.float32)])
        return self._layer


class _Memory(_Calibrated):
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


class NeighbourHead(_Memory):
    """k nearest training vectors by cosine similarity; each votes with weight exp(similarity / T), so the
    probabilities are smooth in the input (Grad-CAM has a gradient). k is chosen by leave-one-out."""

    kind = "knn"
    CHOICES = (1, 3, 5, 7, 9, 15)
    TEMPERATURE = 0.05

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> "NeighbourHead":
        self.remember(vectors, labels, num_classes)
        sims = self.train @ self.train.T
        np.fill_diagonal(sims, -np.inf)  # leave each image out of its own vote
        choices = [k for k in self.CHOICES if k < len(labels)] or [1]
        scores = [float((self._vote(sims, k).argmax(1) == labels).mean()) for k in choices]
        best = max(scores)
        self.k = max(k for k, score in zip(choices, scores) if score == best)  # ties: the smoother vote
        return self

    def _vote(self, sims: np.ndarray, k: int) -> np.ndarray:
        order = np.argsort(-sims, axis=1)[:, :k]
        top = np.take_along_axis(sims, order, axis=1)
        weight = softmax(top / self.TEMPERATURE)
        probs = np.zeros((len(sims), self.num_classes))
        np.add.at(probs, (np.arange(len(sims))[:, None], self.labels[order]), weight)
        return probs

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        from core.calibration import scale

        return scale(self._vote(unit_rows(vectors) @ self.train.T, self.k), self.temperature)

    def weights(self) -> dict[str, np.ndarray]:
        return {**self.memory_weights(), f"{PREFIX}k": np.array(self.k)}

    def load(self, weights: dict[str, np.ndarray]) -> "NeighbourHead":
        self.load_memory(weights)
        self.k = int(weights[f"{PREFIX}k"])
        return self

    def keras_layer(self):
        from core.head_layers import NeighbourVote

        return NeighbourVote(self.train, self.labels, self.num_classes, self.k, self.TEMPERATURE, self.temperature)


class NearestMeanHead(_Memory):
    """Each class's mean direction (of unit-length training vectors); probabilities are the softmax of the
    cosine similarities to the means over a temperature."""

    kind = "nearest-mean"
    TEMPERATURE = 0.05

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> "NearestMeanHead":
        self.remember(vectors, labels, num_classes)
        self.means = unit_rows(np.stack([self.train[labels == c].mean(0) for c in range(num_classes)]))
        return self

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(unit_rows(vectors) @ self.means.T / (self.TEMPERATURE * self.temperature))

    def weights(self) -> dict[str, np.ndarray]:
        return {**self.memory_weights(), f"{PREFIX}means": self.means}

    def load(self, weights: dict[str, np.ndarray]) -> "NearestMeanHead":
        self.load_memory(weights)
        self.means = weights[f"{PREFIX}means"]
        return self

    def keras_layer(self):
        """Unit length, cosine scores over the temperature, softmax: built-in layers only."""
        from core.tf import tf_keras

        dense = tf_keras.layers.Dense(len(self.means), activation="softmax", use_bias=False, name="head_means")
        layer = tf_keras.Sequential([tf_keras.layers.UnitNormalization(name="head_unit"), dense], name="classifier")
        layer.build((None, self.means.shape[1]))
        dense.set_weights([(self.means.T / (self.TEMPERATURE * self.temperature)).astype(np.float32)])
        return layer


INSTANT = {"knn": NeighbourHead, "nearest-mean": NearestMeanHead}


def new_head(kind: str, num_classes: int, dropout: float = 0.0, balanced: bool = False):
    """An untrained head of this kind (config.HEADS names them); balanced: classes weighted equally (the
    dense head's weighting is the trainer's, in its loss)."""
    if kind == "dense":
        return DenseHead(num_classes, dropout)
    return INSTANT[kind]() if kind in INSTANT else LinearHead(kind, balanced)


def load_head(kind: str, weights: dict[str, np.ndarray], num_classes: int):
    """A trained head back from a run's weights."""
    return new_head(kind, num_classes).load(weights)
