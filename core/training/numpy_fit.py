"""A dense head on fixed vectors (every block frozen), trained in numpy (core.model.heads.softmax_fit) with what
the Keras phases of core.training.dense give: progress, cancel at the next batch, the divergence check, one
history row per epoch, and early stopping on the validation loss with the best weights restored (Keras'
EarlyStopping(restore_best_weights=True)). No TensorFlow."""

from __future__ import annotations

import math
import time

from core.model.heads import balanced_weights
from core.model.heads.softmax_fit import SoftmaxFit, sample_weights
from core.training.context import PROGRESS_INTERVAL_S, Cancelled, TrainingContext, TrainProgress, diverged
from core.training.inputs import PARTS, Inputs
from core.training.plan import EPOCH_VECTORS, RunPlan


class _EarlyStopping:
    """Keras' EarlyStopping on val_loss: stop after `patience` epochs without a new best; keep the best weights
    (from the first epoch on) to restore at the end."""

    def __init__(self, patience: int):
        self.patience, self.wait, self.best, self.weights = patience, 0, math.inf, None

    def stop(self, epoch: int, val_loss: float, fit: SoftmaxFit) -> bool:
        if self.weights is None:
            self.weights = fit.get()
        self.wait += 1
        if val_loss < self.best:
            self.best, self.weights, self.wait = val_loss, fit.get(), 0
            return False
        return self.wait >= self.patience and epoch > 0


def _batch_hook(ctx: TrainingContext, phase, epoch: int, epochs: int, started: float):
    """after_batch for SoftmaxFit.epoch: the divergence check, cancel, progress."""
    last = [0.0]

    def after_batch(batch: int, batches: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise diverged(loss, epoch, batch + 1, phase)
        if ctx.should_stop and ctx.should_stop():
            raise Cancelled(f"cancelled during epoch {epoch}")
        now = time.monotonic()
        if ctx.progress and (now - last[0] >= PROGRESS_INTERVAL_S or batch + 1 == batches):
            last[0] = now
            done, total = (epoch - 1) * batches + batch + 1, epochs * batches
            ctx.progress(TrainProgress(phase.name, epoch, epochs, batch + 1, batches, {"loss": loss},
                                       (now - started) / done * (total - done)))
    return after_batch


def fit_dense_numpy(ctx: TrainingContext, plan: RunPlan, inputs: Inputs, num_classes: int):
    """The head trained for the plan's one phase; (the DenseHead, each part's probabilities)."""
    config, labels, phase = ctx.config, inputs.labels, plan.phases[0]
    fit = SoftmaxFit(inputs.cuts["train"].shape[1], num_classes, learning_rate=phase.learning_rate,
                     dropout=config.dropout, seed=config.seed)
    weights = sample_weights(labels["train"], balanced_weights(labels["train"]) if config.class_weight else None)
    validate = len(labels["val"]) > 0
    stopping = _EarlyStopping(config.early_stopping) if config.early_stopping > 0 and validate else None
    started = time.monotonic()
    with ctx.timed(phase.name):
        for e in range(phase.epochs):
            x = inputs.per_epoch[min(e, len(inputs.per_epoch) - 1)] if plan.consumes == EPOCH_VECTORS \
                else inputs.cuts["train"]
            epoch_start = time.monotonic()
            loss, accuracy = fit.epoch(x, labels["train"], weights, config.batch_size,
                                       _batch_hook(ctx, phase, e + 1, phase.epochs, started))
            val_loss, val_accuracy = fit.evaluate(inputs.cuts["val"], labels["val"]) if validate else (None, None)
            ctx.history.append({"epoch": e + 1, "phase": phase.name, "learning_rate": phase.learning_rate,
                                "seconds": time.monotonic() - epoch_start, "loss": loss, "accuracy": accuracy,
                                "val_loss": val_loss, "val_accuracy": val_accuracy})
            if ctx.on_epoch:
                ctx.on_epoch(list(ctx.history))
            if stopping and stopping.stop(e, val_loss, fit):
                break
        if stopping:
            fit.set(stopping.weights)
    head = config.new_head(num_classes)
    head.set_kernel_bias(fit.kernel, fit.bias)
    with ctx.timed("evaluate"):
        ctx.report("evaluate")
        return head, {n: head.probs(inputs.cuts[n]) for n in PARTS}
