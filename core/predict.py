"""Rebuild a saved run's model from its config and weights, and predict new images.

Only arrays the studio wrote itself are loaded (weights.npz with allow_pickle=False);
no model file is ever deserialised.
"""

from __future__ import annotations

import csv
import io
from collections import OrderedDict
from pathlib import Path

import numpy as np

from core.backbones import load_backbone
from core.backbones.tf import tf_keras
from core.data.decode import ImageDecodeError, load_array
from core.errors import RunError
from core.heads import load_head
from core.rejection import RejectionRule
from core.runs import Run, RunState, load_run
from core.training import run_batches

_CACHE: OrderedDict[str, "RunModel"] = OrderedDict()
_CACHE_SIZE = 3


class RunModel:
    """A completed run's classifier: uint8 images (N, S, S, 3) -> class probabilities."""

    def __init__(self, run: Run):
        if run.state != RunState.COMPLETED:
            raise RunError(f"Run {run.id} is {run.state}; only completed runs can predict.")
        self.run = run
        self.classes = tuple(run.split().classes)
        weights = run.weights()
        self.backbone = load_backbone(run.config.backbone, run.config.image_size)
        self.backbone.load_tuned_weights(weights)
        self.size = self.backbone.input_size
        self.head = load_head(run.config.head, weights, len(self.classes))
        self.rule = RejectionRule.from_weights(weights)  # None for a run trained before the rule existed
        image_in = tf_keras.Input(self.backbone.image_shape, dtype="uint8", name="image")
        features = self.backbone.feature_model(tf_keras.layers.Rescaling(1.0 / 255.0)(image_in))
        self.features = tf_keras.Model(image_in, features, name="run_features")

    @property
    def explains(self) -> bool:
        """The head keeps its training vectors (knn, nearest-mean): it can name the training images nearest
        to a prediction."""
        return hasattr(self.head, "nearest")

    def nearest(self, images: np.ndarray, n: int = 5) -> list[list[dict]]:
        """For each image, the n training images nearest in feature space: relpath, label, cosine similarity."""
        return self.nearest_to(run_batches(self.features, images), n)

    def nearest_to(self, vectors: np.ndarray, n: int = 5) -> list[list[dict]]:
        train = self.run.split().train
        index, sims = self.head.nearest(vectors, n)
        return [[{"relpath": train[i].relpath, "label": train[i].label, "similarity": round(float(sim), 4)}
                 for i, sim in zip(row, row_sims)] for row, row_sims in zip(index, sims)]

    def head_probs(self, features):
        """Class probabilities from feature vectors, as a differentiable TensorFlow computation."""
        return self.head.keras_layer()(features, training=False)

    def classify(self, images: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities, feature vectors): one pass through the backbone serves both; the head is
        numpy (the same probabilities as its Keras layer)."""
        # A traced function, not model.predict: much faster for one image (BENCHMARKS.md, (c)).
        vectors = run_batches(self.features, images, batch_size)
        return self.head.probs(vectors), vectors

    def unknown(self, vectors: np.ndarray) -> list[bool | None]:
        """The "none of these" rule's verdict per image (None: the run has no rule)."""
        if self.rule is None:
            return [None] * len(vectors)
        return [bool(u) for u in self.rule.unknown(vectors)]

    def predict_arrays(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        return self.classify(images, batch_size)[0]

    def top_k(self, probs: np.ndarray, k: int = 3) -> list[list[dict]]:
        k = min(k, len(self.classes))
        return [[{"label": self.classes[i], "probability": float(p[i])} for i in np.argsort(-p)[:k]] for p in probs]


def run_model(run_id: str) -> RunModel:
    """The run's model, kept warm for repeated predictions (a few runs at a time)."""
    if run_id in _CACHE:
        _CACHE.move_to_end(run_id)
        return _CACHE[run_id]
    model = RunModel(load_run(run_id))
    _CACHE[run_id] = model
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return model


def predict_sources(run_id: str, sources: list[tuple[str, bytes | str | Path]], k: int = 3) -> list[dict]:
    """One dict per image: {"image", "top": [...], "unknown": far from every class (the run's rule)} (and
    "nearest": the training images behind the prediction, for a head that keeps them) or {"image", "error"}
    for a file that cannot be read."""
    model = run_model(run_id)
    results: list[dict] = [{} for _ in sources]
    arrays, where = [], []
    for i, (name, source) in enumerate(sources):
        try:
            arrays.append(load_array(source, model.size, name=name))
            where.append(i)
        except ImageDecodeError as exc:
            results[i] = {"image": name, "error": str(exc)}
    if arrays:
        probs, vectors = model.classify(np.stack(arrays))
        nearest = model.nearest_to(vectors) if model.explains else [None] * len(vectors)
        for i, top, unknown, near in zip(where, model.top_k(probs, k), model.unknown(vectors), nearest):
            results[i] = {"image": sources[i][0], "top": top, "unknown": unknown, **({"nearest": near} if near else {})}
    return results


def predictions_csv(results: list[dict]) -> str:
    """predict_sources' results as CSV: one row per image and rank, or one row with the error."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image", "rank", "label", "probability", "unknown"])
    for result in results:
        for rank, t in enumerate(result.get("top", []), 1):
            writer.writerow([result["image"], rank, t["label"], f"{t['probability']:.6f}", result.get("unknown")])
        if "error" in result:
            writer.writerow([result["image"], "", "error", result["error"]])
    return buf.getvalue()
