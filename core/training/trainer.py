"""Training: follow the run's plan (core.training.plan) as a recipe: set_up, fit, finish.

set_up: plan; load the TensorFlow backbone only if the plan needs it; decode; run the frozen part once per
image (and, with augmentation, once per epoch). fit: a dense head on fixed vectors in numpy
(core.training.numpy_fit), so a run whose every block is frozen never loads TensorFlow; with unfrozen blocks,
Keras phase by phase (core.training.dense); the other heads in one step. finish: calibrate, evaluate, weights.

The backbone is cut after block K. The frozen part always runs in inference mode with no
backward pass. Every pretrained block, trainable or not, runs with training=False so BatchNorm
keeps its ImageNet statistics (the Keras fine-tuning guide's advice for small datasets); only the
head's dropout trains. Randomly initialised blocks have no statistics to keep: their trainable
blocks run BatchNorm in training mode, as training from scratch needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from core.backbones import get_spec, load_backbone, model_store, tflite_run
from core.backbones.summary import BackboneSummary
from core.data.sampling import Split
from core.model.calibration import ece, fit_temperature, scale
from core.model.heads import Head
from core.model.metrics import Predictions, summarize
from core.model.rejection import RejectionRule, fit_rule
from core.training.config import TrainConfig
from core.training.context import TrainingContext, TrainProgress
from core.training.inputs import PARTS, Inputs, gather_inputs
from core.training.numpy_fit import fit_dense_numpy

if TYPE_CHECKING:
    from core.backbones.base import Backbone
    from core.training.dense import Models
from core.training.plan import Consumes, PhaseName, RunPlan, plan_run


@dataclass(kw_only=True)
class TrainResult:
    history: list[dict]
    predictions: dict[str, Predictions]
    metrics: dict
    timings: dict  # seconds per stage, and which engine ran the frozen part
    weights: dict[str, np.ndarray]
    trainable_params: int
    frozen_params: int
    plan: RunPlan

    @property
    def cached(self) -> bool:
        return self.plan.cached


def parameter_counts(backbone, frozen: int, num_classes: int) -> tuple[int, int]:
    """(trainable, frozen) parameters when the first `frozen` blocks are frozen, the head included;
    BatchNorm moving statistics never train, so they count as frozen. `backbone` is a Backbone or a
    BackboneSummary (one read from a converted file knows only its total)."""
    head = backbone.feature_dim * num_classes + num_classes
    infos = backbone.block_infos
    if not infos:
        return head, backbone.params
    trainable = sum(b.trainable_params for b in infos[frozen:]) + head
    return trainable, sum(b.params for b in infos) + head - trainable


def _build_backbone(ctx: TrainingContext):
    """The backbone in TensorFlow and its summary, with the cuts that have a converted forward."""
    from core.tf import tf_keras

    config = ctx.config
    tf_keras.utils.set_random_seed(config.seed)  # a randomly initialised backbone starts the same every time
    with ctx.scope():
        backbone = load_backbone(config.backbone, config.image_size)
    converted = tflite_run.converted_cuts(config.backbone, backbone.input_size, backbone.num_blocks)
    return backbone, backbone.summary(converted)


def _convert_first(ctx: TrainingContext) -> None:
    """A bundled backbone's first use converts it (Lite1 and Lite2 are not converted at set-up)."""
    from core.backbones import bundled

    bundled.prepare(ctx.config.backbone, lambda stage, done, total: ctx.report("convert", batch=done, batches=total),
                    model_store.TRAINING_PARTS)


@dataclass(frozen=True, kw_only=True)
class _Loaded:
    plan: RunPlan
    backbone: Backbone | None  # the TensorFlow backbone, when the plan needs one
    summary: BackboneSummary
    forward: Callable | None  # the frozen part through TFLite, when the plan runs it there


def _load(ctx: TrainingContext, split: Split) -> _Loaded:
    """Plan the run; build the TensorFlow backbone only if the plan needs it; open the TFLite forward.
    With every block frozen and converted, the converted file's summary is enough to plan."""
    config, distributed = ctx.config, ctx.strategy is not None
    # The converted forward's presence is a file check; the weights' manifest is checked where they load.
    if get_spec(config.backbone).converted and not model_store.ready(config.backbone, ("tflite",)):
        _convert_first(ctx)
    summary = None if distributed else tflite_run.whole_summary(config.backbone, config.image_size)
    backbone = None
    if summary is None or config.resolved_frozen(summary.num_blocks) != summary.num_blocks:
        backbone, summary = _build_backbone(ctx)
    plan = plan_run(config, split, summary, distributed=distributed)
    if plan.build_backbone and backbone is None:
        backbone, summary = _build_backbone(ctx)
        plan = plan_run(config, split, summary, distributed=distributed)
    forward = tflite_run.forward_for(config.backbone, summary.input_size, plan.frozen) \
        if plan.engine == "tflite" else None
    if plan.engine == "tflite" and forward is None:  # the file was damaged and dropped: TensorFlow instead
        if backbone is None:
            backbone, summary = _build_backbone(ctx)
        summary = replace(summary, converted_cuts=frozenset())
        plan = plan_run(config, split, summary, distributed=distributed)
    return _Loaded(plan=plan, backbone=backbone, summary=summary, forward=forward)


def _fit_in_one_step(ctx: TrainingContext, head, vectors: dict, labels: dict, num_classes: int) -> dict:
    """A head fitted in one step on the vectors (scikit-learn, k-NN, nearest mean); each part's probabilities."""
    start = time.monotonic()
    ctx.report(PhaseName.FIT, epoch=1, epochs=1)
    head.fit(vectors["train"], labels["train"], num_classes, ctx.config.seed)
    probs = {n: head.probs(vectors[n]) if len(vectors[n]) else np.zeros((0, num_classes)) for n in PARTS}
    accuracy = {n: float((probs[n].argmax(1) == labels[n]).mean()) if len(labels[n]) else None for n in PARTS}
    ctx.history.append({"epoch": 1, "phase": "fit", "learning_rate": None, "seconds": time.monotonic() - start,
                        "loss": None, "accuracy": accuracy["train"], "val_loss": None,
                        "val_accuracy": accuracy["val"]})
    if ctx.on_epoch:
        ctx.on_epoch(list(ctx.history))
    return probs


@dataclass(frozen=True, kw_only=True)
class _Calibration:
    probs: dict  # each part's probabilities, temperature-scaled
    rule: RejectionRule  # the "none of these" rule
    metrics: dict


def _calibrate(head, probs: dict, labels: dict, vectors: dict, num_classes: int) -> _Calibration:
    """Temperature scaling fitted on validation (every part's probabilities rescaled, the head told) and the
    "none of these" rule fitted on the training vectors; the metrics both add."""
    temperature = fit_temperature(probs["val"], labels["val"])
    head.calibrate(temperature)
    scaled = {n: scale(probs[n], temperature) for n in PARTS}
    rule = fit_rule(vectors["train"], labels["train"], num_classes)
    flagged = rule.unknown(vectors["val"]) if len(vectors["val"]) else None
    metrics = {"temperature": temperature, "ece_before": ece(probs["val"], labels["val"]),
               "ece": ece(scaled["val"], labels["val"]), "test_ece": ece(scaled["test"], labels["test"]),
               "rejection_threshold": rule.threshold,
               "val_unknown_share": float(flagged.mean()) if flagged is not None else None}
    return _Calibration(probs=scaled, rule=rule, metrics=metrics)


@dataclass(frozen=True, kw_only=True)
class SetUp:
    """A run up to its first batch: the plan, what it loaded, its inputs and, for a dense head, the untrained
    Keras models."""
    ctx: TrainingContext
    plan: RunPlan
    backbone: Backbone | None  # the TensorFlow backbone, when the plan needed one
    summary: BackboneSummary
    inputs: Inputs
    models: Models | None  # the Keras models of a dense head that trains with TensorFlow
    split: Split


@dataclass(frozen=True, kw_only=True)
class Fitted:
    """The trained head, each part's probabilities and the training and validation images' final feature
    vectors (the rejection rule's)."""
    head: Head
    probs: dict[str, np.ndarray]
    vectors: dict[str, np.ndarray]


def set_up(config: TrainConfig, split: Split, *, progress: Callable[[TrainProgress], None] | None = None,
            should_stop: Callable[[], bool] | None = None, on_epoch: Callable[[list[dict]], None] | None = None,
            strategy=None) -> SetUp:
    """Plan the run, load what the plan needs, gather its inputs (decoded, through the frozen part) and build
    the dense head's Keras models when it trains in TensorFlow. `strategy`: a tf.distribute.Strategy, or None."""
    config.validate()
    ctx = TrainingContext(
        config=config, progress=progress, should_stop=should_stop, on_epoch=on_epoch, strategy=strategy
    )
    with ctx.timed("load"):
        loaded = _load(ctx, split)
    plan, backbone, summary = loaded.plan, loaded.backbone, loaded.summary
    ctx.timings["frozen_forward"] = plan.engine
    inputs = gather_inputs(ctx, plan, backbone, summary, loaded.forward, split)
    models = None
    if plan.head == "dense" and not numpy_head(plan, ctx):
        from core.training.dense import build_models

        models = build_models(ctx, plan, backbone, summary, len(split.classes))
    return SetUp(ctx=ctx, plan=plan, backbone=backbone, summary=summary, inputs=inputs, models=models, split=split)


def numpy_head(plan: RunPlan, ctx: TrainingContext) -> bool:
    """A dense head on fixed vectors (every block frozen) trains in numpy, without TensorFlow; with the
    unfrozen blocks, or across devices, Keras trains it."""
    return plan.head == "dense" and plan.consumes in (Consumes.VECTORS, Consumes.EPOCH_VECTORS) and ctx.strategy is None


def fit(setup: SetUp) -> Fitted:
    """The head (and the unfrozen blocks) trained, phase by phase; or a one-step head fitted."""
    ctx, plan, inputs, models = setup.ctx, setup.plan, setup.inputs, setup.models
    num_classes = len(setup.split.classes)
    if models is not None:
        from core.training.dense import fit_dense, trained_vectors

        probs = fit_dense(ctx, plan, models, inputs)
        return Fitted(
            head=models.head,
            probs=probs,
            vectors=trained_vectors(ctx, plan, setup.backbone, setup.summary, models, inputs),
        )
    if plan.head == "dense":
        head, probs = fit_dense_numpy(ctx, plan, inputs, num_classes)
        return Fitted(head=head, probs=probs, vectors=inputs.need("cuts"))
    head = ctx.config.new_head(num_classes)
    with ctx.timed("fit"):
        cuts = inputs.need("cuts")
        return Fitted(head=head, probs=_fit_in_one_step(ctx, head, cuts, inputs.labels, num_classes), vectors=cuts)


def finish(setup: SetUp, fitted: Fitted) -> TrainResult:
    """Calibrate, fit the rejection rule, and collect the predictions, metrics and weights."""
    plan, split, labels, classes = setup.plan, setup.split, setup.inputs.labels, setup.split.classes
    calibrated = _calibrate(fitted.head, fitted.probs, labels, fitted.vectors, len(classes))
    probs = calibrated.probs
    tuned = setup.backbone.tuned_weights(plan.frozen) if plan.fine_tunes and setup.backbone else {}
    weights = {**fitted.head.weights(), **calibrated.rule.weights(), **tuned}
    predictions = {
        n: Predictions(
            names=tuple(i.relpath for i in getattr(split, n)), labels=labels[n], probs=probs[n], classes=classes
        )
        for n in PARTS
    }
    trainable, frozen = parameter_counts(setup.summary, plan.frozen, len(classes))
    return TrainResult(
        history=setup.ctx.history,
        predictions=predictions,
        metrics={**summarize(predictions), **calibrated.metrics},
        timings=setup.ctx.timings,
        weights=weights,
        trainable_params=trainable,
        frozen_params=frozen,
        plan=plan,
    )


def train(config: TrainConfig, split: Split, *, progress: Callable[[TrainProgress], None] | None = None,
          should_stop: Callable[[], bool] | None = None, on_epoch: Callable[[list[dict]], None] | None = None,
          strategy: Any = None) -> TrainResult:
    """Train one run in this process: set_up (plan, load, decode, run the frozen part), fit (the head, then
    fine-tuning), finish (calibrate, evaluate, collect the weights). Writes nothing; core.runs.jobs saves it.

    Args:
        config: what to train (checked by config.validate(); a bad value raises TrainingError).
        split: the train, validation and test images and the classes (core.data.sampling.split).
        progress: called with a TrainProgress at each stage, batch and epoch.
        should_stop: polled between batches; True cancels the run (raises Cancelled).
        on_epoch: called with the whole history so far after each epoch.
        strategy: a tf.distribute.Strategy to train under, or None for the default device.

    Returns:
        TrainResult: the history, each part's predictions, metrics, weights, the plan, the timings.

    Raises:
        TrainingError: the config cannot train on this split (the message says what to change).
        Cancelled: should_stop asked for it.
    """
    setup = set_up(config, split, progress=progress, should_stop=should_stop, on_epoch=on_epoch,
                       strategy=strategy)
    return finish(setup, fit(setup))
