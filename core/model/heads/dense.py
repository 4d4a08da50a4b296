"""The dense head: dropout and a softmax layer, trained in numpy on fixed vectors (core.model.heads.softmax_fit)
or by Keras with the unfrozen blocks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from core.model.heads.base import PREFIX, Calibrated, softmax
from core.model.heads.softmax_fit import SoftmaxFit, sample_weights


def balanced_weights(labels: np.ndarray) -> dict[int, float]:
    """Class weights that give every class the same total weight (scikit-learn's "balanced")."""
    counts = np.bincount(labels)
    return {c: len(labels) / (len(counts) * n) for c, n in enumerate(counts) if n}


_BUILDING = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class DenseSchedule:
    """How DenseHead.fit trains the head alone on fixed vectors (TrainConfig's defaults)."""
    learning_rate: float = 1e-2
    epochs: int = 10
    batch_size: int = 32


class DenseHead(Calibrated):
    """Dropout then a softmax layer; `layer` is trained by the trainer's Keras phases. Calibrating folds the
    temperature into the layer's weights (softmax(z / T) is a softmax of a layer scaled by 1 / T). A head
    loaded from a run keeps numpy weights and builds its Keras layer only when asked, so prediction from
    vectors never loads TensorFlow."""

    kind = "dense"

    def __init__(self, num_classes: int, dropout: float = 0.0, *, balanced: bool = False,
                 schedule: DenseSchedule = DenseSchedule()):
        self.num_classes, self.dropout, self.balanced, self.schedule = num_classes, dropout, balanced, schedule
        self._layer: Any = None
        self._loaded: list[np.ndarray] | None = None  # [kernel, bias] until a Keras layer takes them over

    @property
    def layer(self):
        """The Keras layer, built once. A loaded head is shared by the app's script threads (two reruns of the
        Results page can ask at once), so the layer is built under a lock and published whole."""
        with _BUILDING:
            if self._layer is None:
                self._layer, self._loaded = self._new_layer(self._loaded), None
        return self._layer

    def _new_layer(self, weights: list[np.ndarray] | None):
        from core.tf import tf_keras

        layer = tf_keras.Sequential([tf_keras.layers.Dropout(self.dropout, name="head_dropout"),
                                     tf_keras.layers.Dense(self.num_classes, activation="softmax",
                                                           name="head_dense")], name="classifier")
        if weights is not None:
            layer.build((None, weights[0].shape[0]))
            layer.set_weights(weights)
        return layer

    def build(self, feature_dim: int) -> DenseHead:
        self.layer.build((None, feature_dim))
        return self

    def fit(self, vectors: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0, *,
            epoch_vectors: Callable[[int], np.ndarray] | None = None, after_batch=None,
            after_epoch=None) -> DenseHead:
        """The head alone on fixed vectors, in numpy (no TensorFlow), as its Keras layer would train: its rate,
        dropout, class weights and schedule. A frozen run passes hooks: epoch_vectors(epoch) gives an augmented
        epoch's training vectors; after_batch(epoch, batch, batches, loss) may raise to stop;
        after_epoch(epoch, fit, loss, accuracy) returns True to stop early."""
        fit = SoftmaxFit(vectors.shape[1], num_classes, learning_rate=self.schedule.learning_rate,
                         dropout=self.dropout, seed=seed)
        weights = sample_weights(labels, balanced_weights(labels) if self.balanced else None)
        for epoch in range(self.schedule.epochs):
            x = epoch_vectors(epoch) if epoch_vectors else vectors
            loss, accuracy = fit.epoch(x, labels, weights, self.schedule.batch_size,
                                       partial(after_batch, epoch) if after_batch else None)
            if after_epoch and after_epoch(epoch, fit, loss, accuracy):
                break
        self.set_kernel_bias(fit.kernel, fit.bias)
        return self

    def set_kernel_bias(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        """Trained weights from outside Keras (the numpy fit)."""
        self._set_kernel_bias([kernel, bias])

    def _kernel_bias(self) -> list[np.ndarray]:
        loaded = self._loaded  # read first: `layer` sets _layer before it clears _loaded, so one of them is there
        return loaded if loaded is not None else self._layer.get_weights()

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

    def load(self, weights: dict[str, np.ndarray]) -> DenseHead:
        self._set_kernel_bias([weights[f"{PREFIX}0"], weights[f"{PREFIX}1"]])
        self.load_temperature(weights)
        return self

    def probs(self, vectors: np.ndarray) -> np.ndarray:
        kernel, bias = self._kernel_bias()
        return softmax(vectors @ kernel + bias)

    def keras_layer(self) -> Any:
        return self.layer
