"""Metrics from predicted probabilities: accuracy with its interval, balanced accuracy, macro-F1,
per-class table, confusion, calibration, top losses.

Predict once, then derive every view from the probabilities (fastai's
ClassificationInterpretation does the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-12
Z95 = 1.959964


def wilson(correct: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson score interval for a proportion of `correct` out of `n` (sound for small n and for
    proportions near 0 or 1, where the normal approximation is not)."""
    if not n:
        return None
    p, z2 = correct / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def accuracy_text(accuracy: float | None, interval: list | tuple | None) -> str:
    """'93.0% (87.1-96.4%)': an accuracy as the app, CLI and report show it; '-' when there is none."""
    if accuracy is None:
        return "-"
    return f"{accuracy:.1%}" + (f" ({interval[0]:.1%}-{interval[1]:.1%})" if interval else "")


@dataclass(frozen=True, kw_only=True)
class Predictions:
    """Probabilities for one split, with the true labels (class indices) and image names."""

    names: tuple[str, ...]
    labels: np.ndarray  # (N,) int
    probs: np.ndarray  # (N, C) float
    classes: tuple[str, ...]

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1) if len(self.names) else np.zeros(0, int)

    @property
    def losses(self) -> np.ndarray:
        return -np.log(np.clip(self.probs[np.arange(len(self.labels)), self.labels], EPS, 1.0))

    def accuracy(self) -> float | None:
        return float((self.predicted == self.labels).mean()) if len(self.names) else None

    def interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the accuracy for this split's size."""
        return wilson(float((self.predicted == self.labels).sum()), len(self.names))

    def balanced_accuracy(self) -> float | None:
        """Mean recall over the classes present: what accuracy says when the classes are imbalanced."""
        recalls = [r["recall"] for r in self.per_class() if r["support"]]
        return float(np.mean(recalls)) if recalls else None

    def macro_f1(self) -> float | None:
        rows = [r["f1"] for r in self.per_class() if r["support"]]
        return float(np.mean(rows)) if rows else None

    def confusion(self) -> np.ndarray:
        """counts[true, predicted]"""
        c = len(self.classes)
        matrix = np.zeros((c, c), dtype=int)
        np.add.at(matrix, (self.labels, self.predicted), 1)
        return matrix

    def cell(self, true: int, predicted: int) -> list[str]:
        """Names of the images of class `true` predicted as `predicted`."""
        mask = (self.labels == true) & (self.predicted == predicted)
        return [self.names[i] for i in np.flatnonzero(mask)]

    def per_class(self) -> list[dict]:
        matrix = self.confusion()
        rows = []
        for i, name in enumerate(self.classes):
            tp = matrix[i, i]
            support = int(matrix[i].sum())
            predicted = int(matrix[:, i].sum())
            precision = tp / predicted if predicted else 0.0
            recall = tp / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            rows.append({"class": name, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                         "support": support})
        return rows

    def top_losses(self, k: int = 16) -> list[dict]:
        order = np.argsort(-self.losses)[:k]
        pred = self.predicted
        return [{"name": self.names[i], "true": self.classes[self.labels[i]], "predicted": self.classes[pred[i]],
                 "probability": float(self.probs[i, pred[i]]), "loss": float(self.losses[i])} for i in order]

    def misclassified(self) -> list[dict]:
        """Every wrongly predicted image, highest loss first."""
        return [row for row in self.top_losses(len(self.names)) if row["true"] != row["predicted"]]

    def most_confused(self, min_count: int = 1) -> list[tuple[str, str, int]]:
        matrix = self.confusion()
        pairs = [(self.classes[t], self.classes[p], int(matrix[t, p])) for t in range(len(self.classes))
                 for p in range(len(self.classes)) if t != p and matrix[t, p] >= min_count]
        return sorted(pairs, key=lambda x: -x[2])


def summarize(splits: dict[str, Predictions]) -> dict:
    """The metrics.json content: accuracy (with its interval, balanced, macro-F1) and loss per split;
    per-class table and confusion on validation."""
    metrics: dict = {}
    for name, p in splits.items():
        metrics[f"{name}_accuracy"] = p.accuracy()
        interval = p.interval()
        metrics[f"{name}_accuracy_interval"] = list(interval) if interval else None
        metrics[f"{name}_balanced_accuracy"] = p.balanced_accuracy()
        metrics[f"{name}_macro_f1"] = p.macro_f1()
        metrics[f"{name}_loss"] = float(p.losses.mean()) if len(p.names) else None
    val = splits["val"]
    metrics["per_class"] = val.per_class()
    metrics["confusion"] = val.confusion().tolist()
    metrics["most_confused"] = val.most_confused()
    return metrics
