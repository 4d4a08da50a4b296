"""A run's inputs: the split's images decoded once (or vectors an analysis stored), through the frozen part
once per image, and with augmentation every epoch's augmented training vectors, as the plan says."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.backbones.forward import run_batches
from core.data.arrays import DEFAULT_CACHE, array_chunks, item_arrays
from core.data.augment import ArrayAugmenter
from core.data.sampling import Split
from core.errors import TrainingError
from core.features.blocks import stored_final_vectors
from core.training.context import PROGRESS_INTERVAL_S, Cancelled, TrainingContext, TrainProgress
from core.training.plan import Consumes, RunPlan

AUGMENT_BATCH = 32
STREAM = 256  # images decoded and run through the frozen part at a time when only vectors are kept
PARTS = ("train", "val", "test")


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What the trainable part trains on, each by part name (train, val, test)."""
    labels: dict  # class indices
    fit: dict  # what fit() reads: the cuts when they are cached, else the images
    images: dict | None = None  # uint8 at the input size; None when stored vectors stood in
    cuts: dict | None = None  # the frozen part's outputs, once per image
    per_epoch: np.ndarray | None = None  # (epochs, n, dim): every epoch's augmented training vectors

    def need(self, name: Literal["images", "cuts", "per_epoch"]) -> Any:
        """One of the optional inputs, which the plan that built these inputs asks for."""
        found = getattr(self, name)
        if found is None:
            raise TrainingError(f"This run's inputs have no {name}: they were gathered for a plan that does not "
                                f"use them. This is a bug in the studio; please report it with the run's config.")
        return found


def _labels(split: Split) -> dict:
    """Each part's labels as class indices."""
    index = {c: i for i, c in enumerate(split.classes)}
    return {n: np.array([index[i.label] for i in getattr(split, n)], dtype=np.int32) for n in PARTS}


def _by_part(everything: np.ndarray, counts: dict) -> dict:
    """Rows of `everything` (train, val, test in order) back into the parts of these sizes."""
    out, start = {}, 0
    for n in PARTS:
        out[n], start = everything[start:start + counts[n]], start + counts[n]
    return out


def _counts(split: Split) -> dict:
    return {n: len(getattr(split, n)) for n in PARTS}


def _items(split: Split) -> list:
    """Every image of the split: train, val, test in order."""
    return [i for n in PARTS for i in getattr(split, n)]


def _decode(ctx: TrainingContext, split: Split, size: int) -> dict:
    """Every image of the split decoded once to uint8 at the input size (or read back from the array
    cache of an earlier run)."""
    everything = _items(split)
    before = DEFAULT_CACHE.decoded
    arrays = item_arrays(everything, size, progress=lambda done, total: ctx.report("decode", batch=done,
                                                                                    batches=total))
    ctx.timings["decoded_images"] = DEFAULT_CACHE.decoded - before
    return _by_part(arrays, _counts(split))


def _stored_vectors(ctx: TrainingContext, plan: RunPlan, split: Split, summary) -> Inputs | None:
    """Feature vectors an analysis of these images left in the feature store, when the plan trains on
    vectors: then nothing is decoded and nothing runs through the backbone."""
    if plan.consumes != Consumes.VECTORS:
        return None
    vectors = stored_final_vectors(_items(split), ctx.config.backbone, summary.input_size, summary.feature_dim)
    if vectors is None:
        return None
    ctx.timings.update(frozen_forward="feature store", decoded_images=0)
    cuts = _by_part(vectors, _counts(split))
    return Inputs(labels=_labels(split), fit=cuts, cuts=cuts)


def frozen_model(backbone, frozen: int, size: int):
    """uint8 images -> the frozen part's output, in TensorFlow (a tf_keras.Model)."""
    from core.backbones import tflite_convert
    from core.tf import tf_keras

    if backbone.layered:
        return tflite_convert.frozen_part(backbone.blocks, size, frozen)
    image_in = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    scaled = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
    return tf_keras.Model(image_in, backbone.layer(scaled, training=False), name="frozen_part")


def _extract(ctx: TrainingContext, forward, images: dict) -> dict:
    """The un-augmented images through the frozen part, once."""
    ctx.report("features", batches=sum(len(images[n]) for n in PARTS))
    everything = forward(np.concatenate([images[n] for n in PARTS]))
    return _by_part(everything, {n: len(images[n]) for n in PARTS})


def augmented_features(augment, forward, images: np.ndarray, epochs: int, progress, should_stop) -> np.ndarray:
    """(epochs, n, dim): each epoch's randomly augmented training images (augment: uint8 batch -> uint8
    batch, an ArrayAugmenter) through the frozen part, computed up front. The same random changes per
    epoch as augmenting inside the model, but the frozen forward runs outside Keras (through TFLite
    when converted) and never in the training graph."""
    batches = math.ceil(len(images) / AUGMENT_BATCH)
    out: np.ndarray | None = None
    last = 0.0
    for epoch in range(epochs):
        for b, i in enumerate(range(0, len(images), AUGMENT_BATCH)):
            features = forward(augment(images[i:i + AUGMENT_BATCH]))
            if out is None:
                out = np.empty((epochs, len(images), *features.shape[1:]), np.float32)
            out[epoch, i:i + len(features)] = features
            if should_stop and should_stop():
                raise Cancelled(f"cancelled while augmenting the images of epoch {epoch + 1}")
            if progress and (time.monotonic() - last >= PROGRESS_INTERVAL_S or b + 1 == batches):
                last = time.monotonic()
                progress(
                    TrainProgress(
                        phase="augment",
                        epoch=epoch + 1,
                        epochs=epochs,
                        batch=epoch * batches + b + 1,
                        batches=epochs * batches,
                    )
                )
    return out if out is not None else np.zeros((epochs, 0, 0), np.float32)


def _frozen_outputs(ctx: TrainingContext, plan: RunPlan, backbone, summary, forward, split: Split,
                    images: dict) -> Inputs:
    """What the frozen part hands the trainable part: cut tensors once per image and, with augmentation,
    every epoch's augmented vectors, as the plan says."""
    config, cuts, per_epoch = ctx.config, None, None
    if forward is None and plan.precompute:
        forward = _frozen_forward(ctx, plan, backbone, summary)
    if plan.precompute:
        with ctx.timed("features"):
            cuts = _extract(ctx, forward, images)
    if plan.consumes == Consumes.EPOCH_VECTORS:
        with ctx.timed("augment"):
            per_epoch = augmented_features(ArrayAugmenter(config.augment, config.seed), forward, images["train"],
                                           config.epochs, ctx.progress, ctx.should_stop)
    # a cached plan always precomputes, so cuts are there; `is not None` says so to the type checker
    return Inputs(labels=_labels(split), fit=cuts if plan.cached and cuts is not None else images, images=images,
                  cuts=cuts, per_epoch=per_epoch)


def _streamed(ctx: TrainingContext, plan: RunPlan, backbone, summary, forward, split: Split) -> Inputs:
    """Every image once through the frozen part, STREAM images at a time, when the plan trains on what the
    frozen part gives alone (vectors or cut tensors): memory holds those and one chunk of images, never the
    whole split decoded (20,000 photos are 3 GB at 224 px)."""
    forward = forward or _frozen_forward(ctx, plan, backbone, summary)
    everything, before = _items(split), DEFAULT_CACHE.decoded
    ctx.report("features", batch=0, batches=len(everything))
    vectors: np.ndarray = np.zeros((0, 0), np.float32)
    with ctx.timed("features"):
        for start, arrays in array_chunks(everything, summary.input_size, STREAM):
            chunk = forward(arrays)
            if start == 0:
                vectors = np.empty((len(everything), *chunk.shape[1:]), np.float32)
            vectors[start:start + len(chunk)] = chunk
            ctx.report("features", batch=min(start + STREAM, len(everything)), batches=len(everything))
            if ctx.should_stop and ctx.should_stop():
                raise Cancelled("cancelled while running the images through the frozen blocks")
    ctx.timings["decoded_images"] = DEFAULT_CACHE.decoded - before
    cuts = _by_part(vectors, _counts(split))
    return Inputs(labels=_labels(split), fit=cuts, cuts=cuts)


def _frozen_forward(ctx: TrainingContext, plan: RunPlan, backbone, summary):
    with ctx.scope():
        model = frozen_model(backbone, plan.frozen, summary.input_size)
    return lambda x: run_batches(model, x)


def gather_inputs(ctx: TrainingContext, plan: RunPlan, backbone, summary, forward, split: Split) -> Inputs:
    """What the trainable part trains on, with the labels: vectors an analysis stored, or the split decoded
    and run through the frozen part as the plan says."""
    stored = _stored_vectors(ctx, plan, split, summary)
    if stored is not None:
        return stored
    if plan.consumes in (Consumes.VECTORS, Consumes.CUTS):
        return _streamed(ctx, plan, backbone, summary, forward, split)
    with ctx.timed("decode"):
        images = _decode(ctx, split, summary.input_size)
    return _frozen_outputs(ctx, plan, backbone, summary, forward, split, images)
