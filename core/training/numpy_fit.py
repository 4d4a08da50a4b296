"""A dense head on fixed vectors (every block frozen), trained in numpy (DenseHead.fit) with what the Keras
phases of core.training.dense give: progress, cancel at the next batch, the divergence check, one
history row per epoch, and early stopping on the validation loss with the best weights restored (Keras'
EarlyStopping(restore_best_weights=True)). No TensorFlow."""

from __future__ import annotations

import math
import time

import numpy as np

from core.model.heads.softmax_fit import SoftmaxFit
from core.training.context import BatchWatch, Cancelled, TrainingContext
from core.training.inputs import PARTS, Inputs
from core.training.plan import Consumes, RunPlan


class _EarlyStopping:
    """Keras' EarlyStopping on val_loss: stop after `patience` epochs without a new best; keep the best weights
    (from the first epoch on) to restore at the end."""

    def __init__(self, patience: int):
        self.patience, self.wait, self.best = patience, 0, math.inf
        self.weights: list[np.ndarray] = []

    def stop(self, epoch: int, val_loss: float | None, fit: SoftmaxFit) -> bool:
        if not self.weights:
            self.weights = fit.get()
        self.wait += 1
        if val_loss is not None and val_loss < self.best:
            self.best, self.weights, self.wait = val_loss, fit.get(), 0
            return False
        return self.wait >= self.patience and epoch > 0


def fit_dense_numpy(ctx: TrainingContext, plan: RunPlan, inputs: Inputs, num_classes: int):
    """The head trained for the plan's one phase (DenseHead.fit, with this run's progress, cancel, history and
    early stopping); (the DenseHead, each part's probabilities)."""
    config, labels, phase = ctx.config, inputs.labels, plan.phases[0]
    validate = len(labels["val"]) > 0
    stopping = _EarlyStopping(config.early_stopping) if config.early_stopping > 0 and validate else None
    watch = BatchWatch(ctx, phase, first_epoch=1, total_epochs=phase.epochs)
    epoch_start = [time.monotonic()]

    def after_batch(epoch: int, batch: int, batches: int, loss: float) -> None:
        if watch.after_batch(epoch, batch, batches, {"loss": loss}):
            raise Cancelled(f"cancelled during epoch {epoch + 1}")

    def after_epoch(epoch: int, fit: SoftmaxFit, loss: float, accuracy: float) -> bool:
        val_loss, val_accuracy = fit.evaluate(inputs.need("cuts")["val"], labels["val"]) if validate else (None, None)
        ctx.add_epoch(phase, epoch + 1, time.monotonic() - epoch_start[0],
                      {"loss": loss, "accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy})
        epoch_start[0] = time.monotonic()
        return bool(stopping and stopping.stop(epoch, val_loss, fit))

    def epoch_vectors(epoch: int):
        return inputs.need("per_epoch")[min(epoch, len(inputs.need("per_epoch")) - 1)]

    head = config.new_head(num_classes)
    with ctx.timed(phase.name):
        head.fit(
            inputs.need("cuts")["train"],
            labels["train"],
            num_classes,
            config.seed,
            after_batch=after_batch,
            after_epoch=after_epoch,
            epoch_vectors=epoch_vectors if plan.consumes == Consumes.EPOCH_VECTORS else None,
        )
        if stopping:
            head.set_kernel_bias(*stopping.weights)
    with ctx.timed("evaluate"):
        ctx.report("evaluate")
        return head, {n: head.probs(inputs.need("cuts")[n]) for n in PARTS}
