"""Calibration: how far a model's confidence can be taken at its word, and temperature scaling.

Temperature scaling (Guo et al., 2017) divides the scores before the softmax by one number T,
fitted on validation by minimising the negative log-likelihood. It never changes which class
wins, only how sure the model says it is. Every head here ends in a softmax (k-NN's vote is
rescaled the same way), so softmax(log p / T) is the scaled model exactly.
"""

from __future__ import annotations

import numpy as np

BINS = 10
EPS = 1e-12
T_RANGE = (0.5, 10.0)  # sharper, fitted on a few images, rounds confident float32 softmaxes to 1 (no gradient)


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities of the scores divided by `temperature`."""
    if temperature == 1.0 or not len(probs):
        return probs
    z = np.log(np.clip(probs, EPS, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], EPS, 1.0)).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in T_RANGE that minimises validation log-loss. 1.0 with fewer than 2 validation images, or when
    every one is right: then the log-loss only falls as confidence rises, and there is nothing to fit."""
    if len(labels) < 2 or (probs.argmax(1) == labels).all():
        return 1.0
    log_t = _golden_minimum(lambda x: _nll(scale(probs, float(np.exp(x))), labels), *np.log(T_RANGE), tol=1e-3)
    return round(float(np.exp(log_t)), 4)


def _golden_minimum(f, low: float, high: float, *, tol: float) -> float:
    """Golden-section search: the log-loss is unimodal in log T (convex in 1/T), and this needs no scipy,
    whose import alone (0.7 s) was half of a frozen run's worker."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2.0


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict]:
    """Equal-width confidence bins: each non-empty bin's mean confidence, accuracy and image count."""
    if not len(labels):
        return []
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return [{"low": b / bins, "high": (b + 1) / bins, "confidence": float(confidence[which == b].mean()),
             "accuracy": float(correct[which == b].mean()), "count": int((which == b).sum())}
            for b in range(bins) if (which == b).any()]


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float | None:
    """Expected calibration error: the image-weighted mean gap between confidence and accuracy per bin."""
    rows = reliability(probs, labels, bins)
    if not rows:
        return None
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / len(labels))
