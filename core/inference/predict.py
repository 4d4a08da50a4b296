"""Rebuild a saved run's model from its config and weights, and predict new images.

Only arrays the studio wrote itself are loaded (weights.npz with allow_pickle=False);
no model file is ever deserialised. A run with every block frozen reads its feature vectors from
the converted TFLite file when `prepare` made one (the trainer's own engine for it), so predicting
with it never loads TensorFlow; any other run builds its backbone in TensorFlow on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.backbones import load_backbone, tflite_run
from core.backbones.depth import ALL
from core.backbones.registry import Engine, get_spec
from core.data.decode import ImageDecodeError, load_array
from core.data.parallel import parallel_map
from core.errors import RunError
from core.fileio import csv_text
from core.model.heads import load_head
from core.model.heads.memory import Memory
from core.model.rejection import RejectionRule
from core.runs.store import Run, RunState, RunStore


class RunModel:
    """A completed run's classifier: uint8 images (N, S, S, 3) -> class probabilities."""

    def __init__(self, run: Run):
        if run.state != RunState.COMPLETED:
            raise RunError(f"Run {run.id} is {run.state}; only completed runs can predict.")
        self.run = run
        self.classes = tuple(run.split().classes)
        self._weights = run.weights()
        self.head = load_head(run.config.head, self._weights, len(self.classes))
        self.rule = RejectionRule.from_weights(self._weights)  # None for a run trained before the rule existed
        frozen = run.config.frozen_blocks == ALL
        self.lite = tflite_run.whole_forward(run.config.backbone, run.config.image_size) if frozen else None

    @property
    def engine(self) -> Engine:
        """What computes the feature vectors: tflite (a frozen run, converted) or tensorflow."""
        return "tflite" if self.lite is not None else "tensorflow"

    @property
    def size(self) -> int:
        if self.lite is not None:  # only the bundled backbone is converted, at this size or its own
            return self.run.config.image_size or get_spec(self.run.config.backbone).input_size
        return self.backbone.input_size

    @cached_property
    def backbone(self):
        backbone = load_backbone(self.run.config.backbone, self.run.config.image_size)
        backbone.load_tuned_weights(self._weights)
        return backbone

    @cached_property
    def features(self):
        """uint8 images -> feature vectors, in TensorFlow (Grad-CAM, exports, and runs without a TFLite file)."""
        from core.tf import tf_keras

        image_in = tf_keras.Input(self.backbone.image_shape, dtype="uint8", name="image")
        features = self.backbone.feature_model(tf_keras.layers.Rescaling(1.0 / 255.0)(image_in))
        return tf_keras.Model(image_in, features, name="run_features")

    def vectors(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        if self.lite is not None:
            return self.lite(images)
        from core.backbones.forward import run_batches

        # A traced function, not model.predict: much faster for one image (BENCHMARKS.md, (c)).
        return run_batches(self.features, images, batch_size)

    @property
    def explains(self) -> bool:
        """The head keeps its training vectors (knn, nearest-mean): it can name the training images nearest
        to a prediction."""
        return isinstance(self.head, Memory)

    def nearest(self, images: np.ndarray, n: int = 5) -> list[list[dict]]:
        """For each image, the n training images nearest in feature space: relpath, label, cosine similarity."""
        return self.nearest_to(self.vectors(images), n)

    def nearest_to(self, vectors: np.ndarray, n: int = 5) -> list[list[dict]]:
        if not isinstance(self.head, Memory):
            raise RunError(f"Run {self.run.id}'s {self.run.config.head} head keeps no training images to name.")
        train = self.run.split().train
        index, sims = self.head.nearest(vectors, n)
        return [[{"relpath": train[i].relpath, "label": train[i].label, "similarity": round(float(sim), 4)}
                 for i, sim in zip(row, row_sims, strict=True)] for row, row_sims in zip(index, sims, strict=True)]

    def head_probs(self, features):
        """Class probabilities from feature vectors, as a differentiable TensorFlow computation."""
        return self.head.keras_layer()(features, training=False)

    def classify(self, images: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities, feature vectors): one pass through the backbone serves both; the head is
        numpy (the same probabilities as its Keras layer)."""
        vectors = self.vectors(images, batch_size)
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


def run_model(store: RunStore, run_id: str) -> RunModel:
    """The run's model, kept warm for repeated predictions (the last few runs asked for)."""
    return model_of(store.load(run_id, verify=False))  # no hashing on a warm call: checked when first loaded


def model_of(run: Run) -> RunModel:
    """A loaded run's model, from the same cache: keyed by the run's folder and when it finished, so a run
    store elsewhere or a run trained again is never served stale."""
    return _model_of(str(run.dir), run.status.get("finished"))


@lru_cache(maxsize=3)
def _model_of(folder: str, finished: float | None) -> RunModel:
    path = Path(folder)
    return RunModel(RunStore(root=path.parent).load(path.name))


def predict_sources(
    store: RunStore, run_id: str, sources: list[tuple[str, bytes | str | Path]], k: int = 3
) -> list[dict]:
    """One dict per image: {"image", "top": [...], "unknown": far from every class (the run's rule)} (and
    "nearest": the training images behind the prediction, for a head that keeps them) or {"image", "error"}
    for a file that cannot be read."""
    model = run_model(store, run_id)
    return classify_decoded(model, sources, decode_sources(sources, model.size), k)


def decode_sources(sources: Sequence[tuple[str, bytes | str | Path]], size: int) -> list[np.ndarray | ImageDecodeError]:
    """Each (name, path or bytes) as a size x size uint8 array, or the error saying why it cannot be read."""
    def load(item: tuple[str, bytes | str | Path]) -> np.ndarray | ImageDecodeError:
        try:
            return load_array(item[1], size, name=item[0])
        except ImageDecodeError as exc:
            return exc

    return list(parallel_map(load, sources))


def classify_decoded(model: RunModel, sources: Sequence[tuple[str, bytes | str | Path]],
                     decoded: list[np.ndarray | ImageDecodeError], k: int = 3) -> list[dict]:
    """predict_sources' dicts for images decode_sources has read."""
    results: list[dict[str, Any]] = [{"image": name, "error": str(d)} if isinstance(d, ImageDecodeError) else {}
                                     for (name, _), d in zip(sources, decoded, strict=True)]
    where = [i for i, d in enumerate(decoded) if isinstance(d, np.ndarray)]
    if where:
        probs, vectors = model.classify(np.stack([d for d in decoded if isinstance(d, np.ndarray)]))
        nearest = model.nearest_to(vectors) if model.explains else [None] * len(vectors)
        for i, top, unknown, near in zip(where, model.top_k(probs, k), model.unknown(vectors), nearest, strict=True):
            results[i] = {"image": sources[i][0], "top": top, "unknown": unknown, **({"nearest": near} if near else {})}
    return results


CSV_COLUMNS = ["image", "label", "probability", "top_k", "unknown", "error"]


def predictions_csv(results: list[dict]) -> str:
    """predict_sources' results as CSV, one row per image: the top class and its probability, the top k as
    "label probability; ...", the "none of these" flag, or the reason the image could not be read."""
    rows = []
    for result in results:
        top = result.get("top") or [{"label": "", "probability": None}]
        rows.append([result["image"], top[0]["label"],
                     "" if top[0]["probability"] is None else f"{top[0]['probability']:.6f}",
                     "; ".join(f"{t['label']} {t['probability']:.4f}" for t in result.get("top", [])),
                     "" if result.get("unknown") is None else result["unknown"], result.get("error", "")])
    return csv_text(CSV_COLUMNS, rows)
