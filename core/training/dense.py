"""The dense head (and the unfrozen blocks) fitted with Keras, phase by phase, as the plan says."""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.backbones.forward import run_batches
from core.data.augment import build_augmenter
from core.model.heads import DenseHead, balanced_weights
from core.tf import tf_keras
from core.training.context import Cancelled, TrainingContext
from core.training.inputs import PARTS, Inputs, frozen_model
from core.training.keras_parts import (
    CachedValidation,
    EpochFeatures,
    Monitor,
    TrainableModel,
    batchnorm_mode,
    chain,
)
from core.training.plan import Consumes, Phase, RunPlan


@dataclass(kw_only=True)
class Models:
    """The Keras models a dense head trains in: cut -> probabilities (trainable), cut -> vectors,
    vector -> probabilities (head only), and what fit() trains on the plan's input."""
    head: DenseHead
    trainable: tf_keras.Model
    vectors: tf_keras.Model
    head_only: tf_keras.Model
    fit: tf_keras.Model
    trainable_blocks: list
    unfrozen: list  # an opaque layer's variables of the unfrozen groups


def _full_model(ctx: TrainingContext, plan: RunPlan, backbone, size: int, head: DenseHead,
                trainable) -> tf_keras.Model:
    """Images (augmented inside the model when asked) through the whole network."""
    image_in = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    x = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
    if ctx.config.augment.enabled:
        x = build_augmenter(ctx.config.augment, ctx.config.seed)(x)
    if backbone.layered:
        return TrainableModel(image_in, trainable(chain(backbone.blocks[:plan.frozen], x)), name="full_model")
    return TrainableModel(image_in, head.layer(backbone.layer(x, training=False)), name="full_model")


def build_models(ctx: TrainingContext, plan: RunPlan, backbone, summary, num_classes: int) -> Models:
    tf_keras.utils.set_random_seed(ctx.config.seed)  # the head starts the same whether or not a backbone was built
    layered = backbone is not None and backbone.layered
    blocks = backbone.blocks[plan.frozen:] if layered else []
    for i, block in enumerate(backbone.blocks if layered else []):
        block.trainable = i >= plan.frozen
    with ctx.scope():
        head = ctx.config.new_head(num_classes)
        cut_in = tf_keras.Input(summary.cut_shape(plan.frozen), name="cut")
        vector = chain(blocks, cut_in, batchnorm_mode(backbone))
        trainable = TrainableModel(cut_in, head.layer(vector), name="trainable_part")
        vector_in = tf_keras.Input((summary.feature_dim,), name="vector")
        head_only = tf_keras.Model(vector_in, head.layer(vector_in), name="head_only")
        to_vectors = tf_keras.Model(cut_in, vector, name="to_vectors")
        fit = (
            trainable
            if plan.consumes != Consumes.IMAGES
            else _full_model(ctx, plan, backbone, summary.input_size, head, trainable)
        )
    unfrozen = backbone.unfrozen_variables(plan.frozen) if backbone is not None and not layered else []
    return Models(
        head=head,
        trainable=trainable,
        vectors=to_vectors,
        head_only=head_only,
        fit=fit,
        trainable_blocks=blocks,
        unfrozen=unfrozen,
    )


def assign_rates(model: TrainableModel, phase: Phase, models: Models) -> None:
    """What this phase trains, and at which rates: in fine-tuning, the head at the head rate and the
    unfrozen blocks (or an opaque layer's groups) at the fine-tuning rate."""
    fine_tune = phase.name == "fine-tune"
    model.head = list(models.head.layer.trainable_variables)
    body = [v for b in models.trainable_blocks for v in b.trainable_variables] + models.unfrozen
    model.body = body if fine_tune else []
    two_rates = fine_tune and phase.head_learning_rate not in (None, phase.learning_rate)
    model.head_optimizer = tf_keras.optimizers.Adam(phase.head_learning_rate) if two_rates else None


def fit_phase(ctx: TrainingContext, plan: RunPlan, phase: Phase, models: Models, inputs: Inputs,
              first_epoch: int) -> None:
    """One phase of model.fit: the head alone, or the head and the unfrozen blocks."""
    config, labels = ctx.config, inputs.labels
    for block in models.trainable_blocks:
        block.trainable = phase.name == "fine-tune"
    model, fit_on = models.fit, inputs.fit
    if plan.consumes == Consumes.CUTS and phase.name == "head" and models.trainable_blocks:
        # Blocks after the cut are frozen in this phase too: their vectors are computed once.
        model, fit_on = models.head_only, {n: run_batches(models.vectors, fit_on[n]) for n in PARTS}
    with ctx.scope():
        optimizer = tf_keras.optimizers.Adam(phase.learning_rate)
        if isinstance(model, TrainableModel):
            assign_rates(model, phase, models)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = max(1, math.ceil(len(labels["train"]) / config.batch_size))
    monitor = Monitor(ctx, phase, first_epoch, batches)
    callbacks, validation = [monitor], None
    if len(labels["val"]):
        validation = (fit_on["val"], labels["val"])
        if plan.precompute and not plan.cached:  # validation images are never augmented: their cuts serve
            callbacks.insert(0, CachedValidation(models.trainable, inputs.need("cuts")["val"], labels["val"]))
            validation = None
        if config.early_stopping > 0:
            callbacks.append(tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.early_stopping,
                                                              restore_best_weights=True))
    if plan.consumes == Consumes.EPOCH_VECTORS:  # vectors in: the frozen part ran in augmented_features
        train_data = dict(x=EpochFeatures(inputs.need("per_epoch"), labels["train"], config.batch_size, config.seed),
                          shuffle=False)
    else:
        train_data = dict(x=fit_on["train"], y=labels["train"], batch_size=config.batch_size, shuffle=True)
    model.fit(**train_data, epochs=phase.epochs, validation_data=validation, callbacks=callbacks, verbose=0,
              class_weight=balanced_weights(labels["train"]) if config.class_weight else None)
    if monitor.cancelled:
        raise Cancelled(f"cancelled during epoch {ctx.history[-1]['epoch'] + 1 if ctx.history else 1}")


def fit_dense(ctx: TrainingContext, plan: RunPlan, models: Models, inputs: Inputs) -> dict:
    """Every phase of the plan, then each part's probabilities."""
    first_epoch = 1
    for phase in plan.phases:
        with ctx.timed(phase.name):
            fit_phase(ctx, plan, phase, models, inputs, first_epoch)
        first_epoch += phase.epochs
    with ctx.timed("evaluate"):
        ctx.report("evaluate")
        if plan.precompute:
            return {n: run_batches(models.trainable, inputs.need("cuts")[n]) for n in PARTS}
        return {n: run_batches(models.fit, inputs.need("images")[n]) for n in PARTS}


def trained_vectors(ctx: TrainingContext, plan: RunPlan, backbone, summary, models: Models,
                    inputs: Inputs) -> dict:
    """The training and validation images' feature vectors through the network as trained (un-augmented)."""
    if plan.consumes in (Consumes.VECTORS, Consumes.EPOCH_VECTORS):
        return inputs.need("cuts")
    if plan.consumes == Consumes.CUTS:
        return {n: run_batches(models.vectors, inputs.need("cuts")[n]) for n in ("train", "val")}
    with ctx.scope():
        to_vectors = frozen_model(backbone, summary.num_blocks, summary.input_size)
    return {n: run_batches(to_vectors, inputs.need("images")[n]) for n in ("train", "val")}
