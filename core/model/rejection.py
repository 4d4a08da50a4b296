""""None of these": a rule that says when an image is far from every class the model was trained on.

The rule is the cosine distance from an image's feature vector to the nearest class mean
direction, with the threshold at a high quantile (99%) of the training images' own held-out
distances (each image left out of its class mean). Measured against the nearest training image
and the five nearest on digits (BENCHMARKS.md, "Trust"), the class means flagged the same share of
photographs and a similar share of the model's own validation images, and they travel with an
export as a few numbers per class, where training vectors would not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.model.vectors import unit_rows

QUANTILE = 0.99
PREFIX = "rejection/"


@dataclass(frozen=True, kw_only=True)
class RejectionRule:
    means: np.ndarray  # (classes, dim) unit-length mean direction of each class's training vectors
    threshold: float  # cosine distance above which an image is "none of these"
    quantile: float = QUANTILE

    def distances(self, vectors: np.ndarray) -> np.ndarray:
        """Each vector's cosine distance to the nearest class mean."""
        return 1.0 - (unit_rows(vectors) @ self.means.T).max(axis=1)

    def unknown(self, vectors: np.ndarray) -> np.ndarray:
        return self.distances(vectors) > self.threshold

    def weights(self) -> dict[str, np.ndarray]:
        return {f"{PREFIX}means": self.means.astype(np.float32), f"{PREFIX}threshold": np.array(self.threshold),
                f"{PREFIX}quantile": np.array(self.quantile)}

    @staticmethod
    def from_weights(weights: dict[str, np.ndarray]) -> RejectionRule | None:
        """The run's rule, or None for a run trained before the rule existed."""
        if f"{PREFIX}means" not in weights:
            return None
        return RejectionRule(means=weights[f"{PREFIX}means"], threshold=float(weights[f"{PREFIX}threshold"]),
                             quantile=float(weights[f"{PREFIX}quantile"]))

    def to_json(self) -> dict:
        """The rule as an export's metadata carries it: enough to apply it with numpy alone."""
        return {"rule": "cosine distance from the feature vector to the nearest class mean direction; above "
                        "threshold means none of the classes",
                "threshold": round(self.threshold, 6), "quantile": self.quantile,
                "class_means": np.round(self.means, 6).tolist()}


def fit_rule(vectors: np.ndarray, labels: np.ndarray, num_classes: int, quantile: float = QUANTILE) -> RejectionRule:
    """Class mean directions of the training vectors; the threshold from each image's distance to its own
    class mean with itself left out (what an unseen image of that class would see)."""
    unit = unit_rows(vectors.astype(np.float64))
    sums = np.stack([unit[labels == c].sum(0) for c in range(num_classes)])
    counts = np.bincount(labels, minlength=num_classes)
    others = sums[labels] - unit
    alone = counts[labels] <= 1  # a class of one image has no held-out distance: use its own mean
    others[alone] = sums[labels][alone]
    held_out = 1.0 - np.einsum("nd,nd->n", unit, unit_rows(others))
    threshold = float(np.quantile(held_out, quantile)) if len(held_out) else 1.0
    return RejectionRule(means=unit_rows(sums), threshold=threshold, quantile=quantile)
