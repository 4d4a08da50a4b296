"""Keras adapters of the trainer: a model that trains the head and the unfrozen blocks at their own rates,
the callback that reports progress, cancels and keeps the history, and the inputs that feed each epoch its
own augmented vectors."""

from __future__ import annotations

import math
import time

import numpy as np

from core.backbones.forward import run_batches
from core.backbones.registry import Source
from core.tf import tf, tf_keras
from core.training.context import BatchWatch, TrainingContext
from core.training.plan import Phase


def chain(blocks, x, training: bool | None = False):
    for block in blocks:
        x = block(x, training=training)
    return x


def batchnorm_mode(backbone) -> bool | None:
    """False (inference statistics) for pretrained blocks; None (batch statistics while fitting) for random ones."""
    return None if backbone is not None and backbone.spec.source == Source.RANDOM else False


class Monitor(tf_keras.callbacks.Callback):
    """Progress, cancel, NaN detection and history rows, from inside model.fit."""

    def __init__(self, ctx: TrainingContext, phase: Phase, first_epoch: int, batches: int):
        super().__init__()
        self.ctx, self.phase, self.first_epoch, self.batches = ctx, phase, first_epoch, batches
        self.watch = BatchWatch(ctx, phase, first_epoch=first_epoch, total_epochs=ctx.config.epochs)
        self.cancelled = False
        self._epoch, self._epoch_start = 0, time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_start = epoch, time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if self.watch.after_batch(self._epoch, batch, self.batches, logs or {}):
            self.cancelled = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.ctx.add_epoch(self.phase, self.first_epoch + epoch, time.monotonic() - self._epoch_start, logs or {})


class TrainableModel(tf_keras.Model):
    """A functional model whose training step updates the head's variables and the `body` variables
    (unfrozen backbone blocks or groups) only, each part at its own rate.

    Fine-tuning keeps the head at its own rate (`head_optimizer`) while the blocks move at the small
    fine-tuning rate (the compiled optimizer): discriminative rates, as fastai's fine_tune. Adam's steps
    do not scale with the gradient, so two rates need two optimizers. It is also how part of an opaque
    hub.KerasLayer stays frozen: that layer has a single trainable flag, so it is loaded trainable,
    called with training=False (BatchNorm keeps its moving statistics), and only the variables of the
    unfrozen groups get gradients."""

    head: list = []
    body: list = []
    head_optimizer = None  # None: the compiled optimizer updates the head too

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            pred = self(x, training=True)
            loss = self.compiled_loss(y, pred, regularization_losses=self.losses)
        grads = tape.gradient(loss, self.head + self.body)
        head_grads, body_grads = grads[:len(self.head)], grads[len(self.head):]
        if self.head_optimizer is None:
            self.optimizer.apply_gradients(zip(grads, self.head + self.body, strict=True))
        else:
            self.head_optimizer.apply_gradients(zip(head_grads, self.head, strict=True))
            if self.body:
                self.optimizer.apply_gradients(zip(body_grads, self.body, strict=True))
        self.compiled_metrics.update_state(y, pred)
        return {m.name: m.result() for m in self.metrics}


class EpochFeatures(tf_keras.utils.Sequence):
    """fit() input whose epoch e reads the features of epoch e's augmented images, shuffled."""

    def __init__(self, per_epoch: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.per_epoch, self.labels, self.batch_size = per_epoch, labels, batch_size
        self.rng = np.random.default_rng(seed)
        self.epoch, self.order = 0, self.rng.permutation(len(labels))

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    def __getitem__(self, i):
        index = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.per_epoch[min(self.epoch, len(self.per_epoch) - 1)][index], self.labels[index]

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self.rng.permutation(len(self.labels))


class CachedValidation(tf_keras.callbacks.Callback):
    """Validation on the cached cut tensors: validation images are never augmented, so their pass
    through the frozen part is done once, not every epoch. Must run before the other callbacks."""

    def __init__(self, trainable_model, cut_val: np.ndarray, y_val: np.ndarray):
        super().__init__()
        self.trainable_model, self.cut_val, self.y_val = trainable_model, cut_val, y_val

    def on_epoch_end(self, epoch, logs=None):
        probs = run_batches(self.trainable_model, self.cut_val)
        picked = np.clip(probs[np.arange(len(self.y_val)), self.y_val], 1e-7, 1.0)
        logs["val_loss"] = float(-np.log(picked).mean())
        logs["val_accuracy"] = float((probs.argmax(1) == self.y_val).mean())
