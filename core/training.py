"""Training: follow the run's plan (core.plan) through short named stages.

load (plan; the TensorFlow backbone only if the plan needs it) -> decode -> extract (the frozen part
once per image) -> augment (per-epoch vectors) -> fit the head / each phase -> evaluate -> weights.

The backbone is cut after block K. The frozen part always runs in inference mode with no
backward pass. Every pretrained block, trainable or not, runs with training=False so BatchNorm
keeps its ImageNet statistics (the Keras fine-tuning guide's advice for small datasets); only the
head's dropout trains. Randomly initialised blocks have no statistics to keep: their trainable
blocks run BatchNorm in training mode, as training from scratch needs.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from core.analysis.features import stored_final_vectors
from core.backbones import lite_forward, load_backbone
from core.backbones.inference import run_batches
from core.calibration import ece, fit_temperature, scale
from core.config import TrainConfig
from core.data.arrays import DEFAULT_CACHE, load_arrays
from core.data.augment import ArrayAugmenter, build_augmenter
from core.data.sampling import Split
from core.errors import TrainingError
from core.evaluation import Predictions, summarize
from core.heads import DenseHead, new_head
from core.plan import CUTS, EPOCH_VECTORS, IMAGES, VECTORS, Phase, RunPlan, plan_run
from core.rejection import fit_rule
from core.tf import tf, tf_keras

PROGRESS_INTERVAL_S = 0.5
AUGMENT_BATCH = 32
PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Progress:
    phase: str  # decode | features | augment | head | fine-tune | fit | evaluate
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    metrics: dict = field(default_factory=dict)
    eta_seconds: float | None = None


class Cancelled(Exception):
    """Training stopped because the user asked."""


@dataclass
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


def _chain(blocks, x, training: bool | None = False):
    for block in blocks:
        x = block(x, training=training)
    return x


def _batchnorm_mode(backbone) -> bool | None:
    """False (inference statistics) for pretrained blocks; None (batch statistics while fitting) for random ones."""
    return None if backbone is not None and backbone.spec.source == "random" else False


class _Monitor(tf_keras.callbacks.Callback):
    """Progress, cancel, NaN detection and history rows, from inside model.fit."""

    def __init__(self, phase: Phase, first_epoch: int, total_epochs: int, batches: int, progress, should_stop,
                 on_epoch, history: list[dict]):
        super().__init__()
        self.phase, self.first_epoch, self.total_epochs, self.batches = phase, first_epoch, total_epochs, batches
        self.progress, self.should_stop, self.on_epoch, self.history = progress, should_stop, on_epoch, history
        self.cancelled = False
        self._last = 0.0
        self._epoch_start = time.monotonic()
        self._fit_start = time.monotonic()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise TrainingError(f"The loss became {loss} in epoch {self.first_epoch + self._epoch}, batch {batch + 1} "
                                f"({self.phase.name} phase); training diverged. Lower the learning rate "
                                f"(now {self.phase.learning_rate:g}).")
        if self.should_stop and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True
        now = time.monotonic()
        if self.progress and (now - self._last >= PROGRESS_INTERVAL_S or batch + 1 == self.batches):
            self._last = now
            done = self._epoch * self.batches + batch + 1
            total = self.phase.epochs * self.batches
            eta = (now - self._fit_start) / done * (total - done) if done else None
            self.progress(Progress(self.phase.name, self.first_epoch + self._epoch, self.total_epochs, batch + 1,
                                   self.batches, {k: float(v) for k, v in logs.items()}, eta))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": self.first_epoch + epoch, "phase": self.phase.name,
               "learning_rate": self.phase.learning_rate, "seconds": time.monotonic() - self._epoch_start}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            row[key] = float(logs[key]) if key in logs else None
        self.history.append(row)
        if self.on_epoch:
            self.on_epoch(list(self.history))


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
            self.optimizer.apply_gradients(zip(grads, self.head + self.body))
        else:
            self.head_optimizer.apply_gradients(zip(head_grads, self.head))
            if self.body:
                self.optimizer.apply_gradients(zip(body_grads, self.body))
        self.compiled_metrics.update_state(y, pred)
        return {m.name: m.result() for m in self.metrics}


def _augmented_features(augment, forward, images: np.ndarray, epochs: int, progress, should_stop) -> np.ndarray:
    """(epochs, n, dim): each epoch's randomly augmented training images (augment: uint8 batch -> uint8
    batch, an ArrayAugmenter) through the frozen part, computed up front. The same random changes per
    epoch as augmenting inside the model, but the frozen forward runs outside Keras (through TFLite
    when converted) and never in the training graph."""
    batches = math.ceil(len(images) / AUGMENT_BATCH)
    out, last = None, 0.0
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
                progress(Progress("augment", epoch + 1, epochs, epoch * batches + b + 1, epochs * batches))
    return out


class _EpochFeatures(tf_keras.utils.Sequence):
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


class _CachedValidation(tf_keras.callbacks.Callback):
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




# ---------- the stages ----------

@dataclass
class _Job:
    """What every stage shares: the config, the callbacks, the strategy and the stage timings."""
    config: TrainConfig
    progress: Callable[[Progress], None] | None
    should_stop: Callable[[], bool] | None
    on_epoch: Callable[[list[dict]], None] | None
    strategy: tf.distribute.Strategy | None
    timings: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def scope(self):  # a fresh context each time: a strategy's scope object is single-use
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def report(self, phase: str, **values) -> None:
        if self.progress:
            self.progress(Progress(phase, **values))

    @contextlib.contextmanager
    def timed(self, stage: str):
        start = time.monotonic()
        yield
        self.timings[f"{stage}_seconds"] = time.monotonic() - start


def _build_backbone(job: _Job):
    """The backbone in TensorFlow and its summary, with the cuts that have a converted forward."""
    config = job.config
    with job.scope():
        backbone = load_backbone(config.backbone, config.image_size)
    converted = lite_forward.converted_cuts(config.backbone, backbone.input_size, backbone.num_blocks)
    return backbone, backbone.summary(converted)


def _load(job: _Job, split: Split):
    """Plan the run; build the TensorFlow backbone only if the plan needs it; open the TFLite forward.
    With every block frozen and converted, the converted file's summary is enough to plan."""
    config, distributed = job.config, job.strategy is not None
    summary = None if distributed else lite_forward.whole_summary(config.backbone, config.image_size)
    backbone = None
    if summary is None or config.resolved_frozen(summary.num_blocks) != summary.num_blocks:
        backbone, summary = _build_backbone(job)
    plan = plan_run(config, split, summary, distributed)
    if plan.build_backbone and backbone is None:
        backbone, summary = _build_backbone(job)
        plan = plan_run(config, split, summary, distributed)
    forward = lite_forward.forward_for(config.backbone, summary.input_size, plan.frozen) \
        if plan.engine == "tflite" else None
    if plan.engine == "tflite" and forward is None:  # the file was damaged and dropped: TensorFlow instead
        if backbone is None:
            backbone, summary = _build_backbone(job)
        summary = replace(summary, converted_cuts=frozenset())
        plan = plan_run(config, split, summary, distributed)
    return plan, backbone, summary, forward


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


def _decode(job: _Job, split: Split, size: int) -> dict:
    """Every image of the split decoded once to uint8 at the input size (or read back from the array
    cache of an earlier run)."""
    everything = _items(split)
    before = DEFAULT_CACHE.decoded
    arrays = load_arrays(everything, size, progress=lambda done, total: job.report("decode", batch=done,
                                                                                    batches=total))
    job.timings["decoded_images"] = DEFAULT_CACHE.decoded - before
    return _by_part(arrays, _counts(split))


def _stored_vectors(job: _Job, plan: RunPlan, split: Split, summary) -> dict | None:
    """Feature vectors an analysis of these images left in the feature store, when the plan trains on
    vectors: then nothing is decoded and nothing runs through the backbone."""
    if plan.consumes != VECTORS:
        return None
    vectors = stored_final_vectors(_items(split), job.config.backbone, summary.input_size, summary.feature_dim)
    if vectors is None:
        return None
    job.timings.update(frozen_forward="feature store", decoded_images=0)
    cuts = _by_part(vectors, _counts(split))
    return {"images": None, "cuts": cuts, "per_epoch": None, "inputs": cuts}


def _inputs(job: _Job, plan: RunPlan, backbone, summary, forward, split: Split) -> dict:
    """What the trainable part trains on, with the labels: vectors an analysis stored, or the split decoded
    and run through the frozen part as the plan says."""
    data = _stored_vectors(job, plan, split, summary)
    if data is None:
        with job.timed("decode"):
            images = _decode(job, split, summary.input_size)
        data = _frozen_outputs(job, plan, backbone, summary, forward, images)
    return {**data, "labels": _labels(split)}


def _frozen_model(backbone, frozen: int, size: int) -> tf_keras.Model:
    """uint8 images -> the frozen part's output, in TensorFlow."""
    if backbone.layered:
        return lite_forward.frozen_part(backbone.blocks, size, frozen)
    image_in = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    scaled = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
    return tf_keras.Model(image_in, backbone.layer(scaled, training=False), name="frozen_part")


def _extract(job: _Job, forward, images: dict) -> dict:
    """The un-augmented images through the frozen part, once."""
    job.report("features", batches=sum(len(images[n]) for n in PARTS))
    everything = forward(np.concatenate([images[n] for n in PARTS]))
    return _by_part(everything, {n: len(images[n]) for n in PARTS})


def _fit_in_one_step(job: _Job, head, vectors: dict, labels: dict, num_classes: int) -> dict:
    """A head fitted in one step on the vectors (scikit-learn, k-NN, nearest mean); each part's probabilities."""
    start = time.monotonic()
    job.report("fit", epoch=1, epochs=1)
    head.fit(vectors["train"], labels["train"], num_classes, job.config.seed)
    probs = {n: head.probs(vectors[n]) if len(vectors[n]) else np.zeros((0, num_classes)) for n in PARTS}
    accuracy = {n: float((probs[n].argmax(1) == labels[n]).mean()) if len(labels[n]) else None for n in PARTS}
    job.history.append({"epoch": 1, "phase": "fit", "learning_rate": None, "seconds": time.monotonic() - start,
                        "loss": None, "accuracy": accuracy["train"], "val_loss": None,
                        "val_accuracy": accuracy["val"]})
    if job.on_epoch:
        job.on_epoch(list(job.history))
    return probs


@dataclass
class _Models:
    """The Keras models a dense head trains in: cut -> probabilities (trainable), cut -> vectors,
    vector -> probabilities (head only), and what fit() trains on the plan's input."""
    head: DenseHead
    trainable: tf_keras.Model
    vectors: tf_keras.Model
    head_only: tf_keras.Model
    fit: tf_keras.Model
    trainable_blocks: list
    unfrozen: list  # an opaque layer's variables of the unfrozen groups


def _full_model(job: _Job, plan: RunPlan, backbone, size: int, head: DenseHead, trainable) -> tf_keras.Model:
    """Images (augmented inside the model when asked) through the whole network."""
    image_in = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    x = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
    if job.config.augment.enabled:
        x = build_augmenter(job.config.augment, job.config.seed)(x)
    if backbone.layered:
        return TrainableModel(image_in, trainable(_chain(backbone.blocks[:plan.frozen], x)), name="full_model")
    return TrainableModel(image_in, head.layer(backbone.layer(x, training=False)), name="full_model")


def _build_models(job: _Job, plan: RunPlan, backbone, summary, num_classes: int) -> _Models:
    tf_keras.utils.set_random_seed(job.config.seed)  # the head starts the same whether or not a backbone was built
    layered = backbone is not None and backbone.layered
    blocks = backbone.blocks[plan.frozen:] if layered else []
    for i, block in enumerate(backbone.blocks if layered else []):
        block.trainable = i >= plan.frozen
    with job.scope():
        head = DenseHead(num_classes, job.config.dropout)
        cut_in = tf_keras.Input(summary.cut_shape(plan.frozen), name="cut")
        vector = _chain(blocks, cut_in, _batchnorm_mode(backbone))
        trainable = TrainableModel(cut_in, head.layer(vector), name="trainable_part")
        vector_in = tf_keras.Input((summary.feature_dim,), name="vector")
        head_only = tf_keras.Model(vector_in, head.layer(vector_in), name="head_only")
        to_vectors = tf_keras.Model(cut_in, vector, name="to_vectors")
        fit = trainable if plan.consumes != IMAGES else _full_model(job, plan, backbone, summary.input_size, head,
                                                                   trainable)
    unfrozen = backbone.unfrozen_variables(plan.frozen) if backbone is not None and not layered else []
    return _Models(head, trainable, to_vectors, head_only, fit, blocks, unfrozen)


def _assign_rates(model: TrainableModel, phase: Phase, models: _Models) -> None:
    """What this phase trains, and at which rates: in fine-tuning, the head at the head rate and the
    unfrozen blocks (or an opaque layer's groups) at the fine-tuning rate."""
    fine_tune = phase.name == "fine-tune"
    model.head = list(models.head.layer.trainable_variables)
    body = [v for b in models.trainable_blocks for v in b.trainable_variables] + models.unfrozen
    model.body = body if fine_tune else []
    two_rates = fine_tune and phase.head_learning_rate not in (None, phase.learning_rate)
    model.head_optimizer = tf_keras.optimizers.Adam(phase.head_learning_rate) if two_rates else None


def _fit_phase(job: _Job, plan: RunPlan, phase: Phase, models: _Models, data: dict, first_epoch: int) -> None:
    """One phase of model.fit: the head alone, or the head and the unfrozen blocks."""
    config, labels = job.config, data["labels"]
    for block in models.trainable_blocks:
        block.trainable = phase.name == "fine-tune"
    model, inputs = models.fit, data["inputs"]
    if plan.consumes == CUTS and phase.name == "head" and models.trainable_blocks:
        # Blocks after the cut are frozen in this phase too: their vectors are computed once.
        model, inputs = models.head_only, {n: run_batches(models.vectors, inputs[n]) for n in PARTS}
    with job.scope():
        optimizer = tf_keras.optimizers.Adam(phase.learning_rate)
        if isinstance(model, TrainableModel):
            _assign_rates(model, phase, models)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = max(1, math.ceil(len(labels["train"]) / config.batch_size))
    monitor = _Monitor(phase, first_epoch, config.epochs, batches, job.progress, job.should_stop, job.on_epoch,
                       job.history)
    callbacks, validation = [monitor], None
    if len(labels["val"]):
        validation = (inputs["val"], labels["val"])
        if plan.precompute and not plan.cached:  # validation images are never augmented: their cuts serve
            callbacks.insert(0, _CachedValidation(models.trainable, data["cuts"]["val"], labels["val"]))
            validation = None
        if config.early_stopping > 0:
            callbacks.append(tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.early_stopping,
                                                              restore_best_weights=True))
    if plan.consumes == EPOCH_VECTORS:  # vectors in: the frozen part ran in _augmented_features
        train_data = dict(x=_EpochFeatures(data["per_epoch"], labels["train"], config.batch_size, config.seed),
                          shuffle=False)
    else:
        train_data = dict(x=inputs["train"], y=labels["train"], batch_size=config.batch_size, shuffle=True)
    model.fit(**train_data, epochs=phase.epochs, validation_data=validation, callbacks=callbacks, verbose=0,
              class_weight=balanced_weights(labels["train"]) if config.class_weight else None)
    if monitor.cancelled:
        raise Cancelled(f"cancelled during epoch {job.history[-1]['epoch'] + 1 if job.history else 1}")


def balanced_weights(labels: np.ndarray) -> dict[int, float]:
    """Class weights that give every class the same total weight (scikit-learn's "balanced")."""
    counts = np.bincount(labels)
    return {c: len(labels) / (len(counts) * n) for c, n in enumerate(counts) if n}


def _fit_dense(job: _Job, plan: RunPlan, models: _Models, data: dict) -> dict:
    """Every phase of the plan, then each part's probabilities."""
    first_epoch = 1
    for phase in plan.phases:
        with job.timed(phase.name):
            _fit_phase(job, plan, phase, models, data, first_epoch)
        first_epoch += phase.epochs
    with job.timed("evaluate"):
        job.report("evaluate")
        if plan.precompute:
            return {n: run_batches(models.trainable, data["cuts"][n]) for n in PARTS}
        return {n: run_batches(models.fit, data["images"][n]) for n in PARTS}


def _frozen_outputs(job: _Job, plan: RunPlan, backbone, summary, forward, images: dict) -> dict:
    """What the frozen part hands the trainable part: cut tensors once per image and, with augmentation,
    every epoch's augmented vectors, as the plan says; `inputs` is what fit() trains on."""
    config = job.config
    data = {"images": images, "cuts": None, "per_epoch": None}
    if forward is None and plan.precompute:
        with job.scope():
            frozen_model = _frozen_model(backbone, plan.frozen, summary.input_size)
        forward = lambda x: run_batches(frozen_model, x)  # noqa: E731
    if plan.precompute:
        with job.timed("features"):
            data["cuts"] = _extract(job, forward, images)
    if plan.consumes == EPOCH_VECTORS:
        with job.timed("augment"):
            data["per_epoch"] = _augmented_features(ArrayAugmenter(config.augment, config.seed), forward,
                                                    images["train"], config.epochs, job.progress, job.should_stop)
    data["inputs"] = data["cuts"] if plan.cached else images
    return data


def _fit_head(job: _Job, plan: RunPlan, backbone, summary, data: dict, num_classes: int):
    """The head (and the unfrozen blocks) trained; returns the head, each part's probabilities and the
    training and validation images' final feature vectors (the rejection rule's)."""
    if plan.head == "dense":
        models = _build_models(job, plan, backbone, summary, num_classes)
        probs = _fit_dense(job, plan, models, data)
        return models.head, probs, _trained_vectors(job, plan, backbone, summary, models, data)
    head = new_head(plan.head, num_classes, balanced=job.config.class_weight)
    with job.timed("fit"):
        return head, _fit_in_one_step(job, head, data["cuts"], data["labels"], num_classes), data["cuts"]


def _trained_vectors(job: _Job, plan: RunPlan, backbone, summary, models: _Models, data: dict) -> dict:
    """The training and validation images' feature vectors through the network as trained (un-augmented)."""
    if plan.consumes in (VECTORS, EPOCH_VECTORS):
        return data["cuts"]
    if plan.consumes == CUTS:
        return {n: run_batches(models.vectors, data["cuts"][n]) for n in ("train", "val")}
    with job.scope():
        to_vectors = _frozen_model(backbone, summary.num_blocks, summary.input_size)
    return {n: run_batches(to_vectors, data["images"][n]) for n in ("train", "val")}


def _calibrate(head, probs: dict, labels: dict, vectors: dict, num_classes: int):
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
    return scaled, rule, metrics


def train(config: TrainConfig, split: Split, progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None, on_epoch: Callable[[list[dict]], None] | None = None,
          strategy: tf.distribute.Strategy | None = None) -> TrainResult:
    """Plan the run, then decode, extract, fit the head (and fine-tune), evaluate, calibrate and collect
    weights."""
    config.validate()
    tf_keras.utils.set_random_seed(config.seed)
    job, classes = _Job(config, progress, should_stop, on_epoch, strategy), split.classes
    with job.timed("load"):
        plan, backbone, summary, forward = _load(job, split)
    job.timings["frozen_forward"] = plan.engine
    data = _inputs(job, plan, backbone, summary, forward, split)
    labels = data["labels"]
    head, raw, vectors = _fit_head(job, plan, backbone, summary, data, len(classes))
    probs, rule, calibration = _calibrate(head, raw, labels, vectors, len(classes))
    weights = {**head.weights(), **rule.weights(),
               **(backbone.tuned_weights(plan.frozen) if plan.fine_tunes else {})}
    predictions = {n: Predictions(tuple(i.relpath for i in getattr(split, n)), labels[n], probs[n], classes)
                   for n in PARTS}
    trainable, frozen = parameter_counts(summary, plan.frozen, len(classes))
    return TrainResult(job.history, predictions, {**summarize(predictions), **calibration}, job.timings, weights,
                       trainable, frozen, plan)


# ---------- the learning-rate finder's use of the stages (core.lr_find) ----------

@dataclass
class Prepared:
    """A run's stages up to its first batch: the plan, the cached inputs and the untrained models."""
    job: _Job
    plan: RunPlan
    data: dict
    models: _Models

    @property
    def labels(self) -> dict:
        return self.data["labels"]

    def train_inputs(self, phase: str) -> np.ndarray:
        """The head's vectors, or the cut tensors fine-tuning starts from."""
        cuts = self.data["cuts"]["train"]
        if phase == "fine-tune" or self.plan.consumes == VECTORS:
            return cuts
        return run_batches(self.models.vectors, cuts)


def prepare_inputs(config: TrainConfig, split: Split, progress=None) -> Prepared:
    """Load, decode (or read stored vectors), run the frozen part once and build the models, as train()
    does; progress(stage, done, total)."""
    report = (lambda p: progress(p.phase, p.batch, p.batches)) if progress else None
    tf_keras.utils.set_random_seed(config.seed)
    job = _Job(config, report, None, None, None)
    plan, backbone, summary, forward = _load(job, split)
    if plan.consumes not in (VECTORS, CUTS):
        raise TrainingError("The learning-rate finder needs the frozen part's outputs cached: choose a layered "
                            "backbone (an opaque hub layer cannot be cut) and a depth whose cut fits in memory.")
    data = _inputs(job, plan, backbone, summary, forward, split)
    return Prepared(job, plan, data, _build_models(job, plan, backbone, summary, len(split.classes)))


def rate_probe(prepared: Prepared, phase: str):
    """step(rate, x, y) -> the batch's loss after one update at `rate`: the head alone on vectors, or, after
    the head phase the run would train first, the unfrozen blocks at `rate` with the head at its own rate."""
    models, plan, config = prepared.models, prepared.plan, prepared.job.config
    if phase == "head":
        model = models.head_only
        model.compile(optimizer=tf_keras.optimizers.Adam(config.learning_rate),
                      loss="sparse_categorical_crossentropy")
    else:
        if plan.phases[0].name == "head":
            _fit_phase(prepared.job, plan, plan.phases[0], models, prepared.data, 1)
        model, fine = models.trainable, plan.phases[-1]
        for block in models.trainable_blocks:
            block.trainable = True
        _assign_rates(model, fine, models)
        model.compile(optimizer=tf_keras.optimizers.Adam(fine.learning_rate), loss="sparse_categorical_crossentropy")
    train_step = tf.function(model.train_step)

    def step(rate: float, x: np.ndarray, y: np.ndarray) -> float:
        model.optimizer.learning_rate.assign(rate)
        model.reset_metrics()
        return float(train_step((tf.constant(x), tf.constant(y)))["loss"])
    return step
