"""The dense head's training in numpy, as Keras trains Dropout -> Dense(softmax) with Adam and sparse
cross-entropy (tf_keras 2: tf_keras/src/optimizers/adam.py, losses and the fit loop), so that a run whose
every block is frozen never loads TensorFlow:

- the kernel starts Glorot-uniform (limit sqrt(6 / (fan_in + fan_out))), the bias at zero;
- dropout keeps each input with probability 1 - rate and scales it by 1 / (1 - rate), in training only;
- the loss of a batch is the mean over its images of weight x cross-entropy (Keras' class_weight becomes
  per-image weights; the sum is divided by the batch size); an epoch's loss and accuracy are the means
  over its images, weighted the same way, as Keras' running metrics are;
- Adam with Keras' defaults (beta 0.9 and 0.999, epsilon 1e-7 added after the square root, the bias
  correction folded into the step size).

Its random numbers are numpy's, not TensorFlow's: the same seed gives the same run here, not the same
weights as Keras (BENCHMARKS.md compares the accuracies)."""

from __future__ import annotations

import numpy as np

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class SoftmaxFit:
    """A softmax layer (kernel, bias) trained batch by batch with dropout on its inputs and Adam."""

    def __init__(self, feature_dim: int, num_classes: int, *, learning_rate: float, dropout: float, seed: int):
        self.rng = np.random.default_rng(seed)
        limit = np.sqrt(6.0 / (feature_dim + num_classes))
        self.kernel = self.rng.uniform(-limit, limit, (feature_dim, num_classes)).astype(np.float32)
        self.bias = np.zeros(num_classes, np.float32)
        self.learning_rate, self.dropout, self.steps = learning_rate, dropout, 0
        self._moments = [np.zeros_like(self.kernel), np.zeros_like(self.bias)]
        self._velocities = [np.zeros_like(self.kernel), np.zeros_like(self.bias)]

    def step(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
        """One update on a batch; (its loss, the weight of its right answers), both before the update."""
        if self.dropout > 0:
            x = x * (self.rng.random(x.shape) >= self.dropout) / (1.0 - self.dropout)
        with np.errstate(over="ignore", invalid="ignore"):
            log_p = _log_softmax(x @ self.kernel + self.bias)
            rows = np.arange(len(y))
            loss = float(-(weights * log_p[rows, y]).sum() / len(y))
            grad = np.exp(log_p)
            grad[rows, y] -= 1.0
            grad *= (weights / len(y))[:, None]
            self._adam([x.T @ grad, grad.sum(axis=0)])
        return loss, float((weights * (log_p.argmax(1) == y)).sum())

    def _adam(self, grads: list[np.ndarray]) -> None:
        self.steps += 1
        alpha = self.learning_rate * np.sqrt(1 - BETA_2 ** self.steps) / (1 - BETA_1 ** self.steps)
        for param, grad, m, v in zip((self.kernel, self.bias), grads, self._moments, self._velocities, strict=True):
            m += (grad - m) * (1 - BETA_1)
            v += (grad * grad - v) * (1 - BETA_2)
            param -= (alpha * m / (np.sqrt(v) + EPSILON)).astype(np.float32)

    def epoch(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray, batch_size: int,
              after_batch=None) -> tuple[float, float]:
        """One shuffled pass over (x, y); the epoch's (loss, accuracy) as Keras reports them.
        after_batch(batch, batches, loss): called after each update (it may raise to stop)."""
        order, batches = self.rng.permutation(len(y)), max(1, -(-len(y) // batch_size))
        loss_sum = right = 0.0
        for b in range(batches):
            index = order[b * batch_size:(b + 1) * batch_size]
            loss, correct = self.step(x[index], y[index], weights[index])
            loss_sum, right = loss_sum + loss * len(index), right + correct
            if after_batch:
                after_batch(b, batches, loss)
        return loss_sum / max(len(y), 1), right / max(float(weights.sum()), 1e-12)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) without dropout, as Keras validates."""
        with np.errstate(over="ignore", invalid="ignore"):
            log_p = _log_softmax(x @ self.kernel + self.bias)
        return float(-log_p[np.arange(len(y)), y].mean()), float((log_p.argmax(1) == y).mean())

    def get(self) -> list[np.ndarray]:
        return [self.kernel.copy(), self.bias.copy()]

    def set(self, weights: list[np.ndarray]) -> None:
        self.kernel, self.bias = (w.copy() for w in weights)


def sample_weights(labels: np.ndarray, class_weight: dict[int, float] | None) -> np.ndarray:
    """Each image's weight in the loss: its class's (Keras' class_weight), or 1."""
    if not class_weight:
        return np.ones(len(labels), np.float32)
    return np.array([class_weight.get(int(c), 1.0) for c in labels], np.float32)
