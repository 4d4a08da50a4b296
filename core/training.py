"""Training: frozen blocks, feature caching at the cut, two phases, heads, evaluation.

The backbone is cut after block K. The frozen part always runs in inference mode with no
backward pass. When its input does not change between epochs (no augmentation) it runs
once per image and the trainable part trains on the cached tensors. Every backbone block,
trainable or not, runs with training=False so BatchNorm keeps its ImageNet statistics
(the Keras fine-tuning guide's advice for small datasets); only the head's dropout trains.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.backbones import lite_forward, load_backbone
from core.backbones.tf import tf, tf_keras
from core.config import TrainConfig
from core.data.arrays import load_arrays
from core.data.augment import ArrayAugmenter, build_augmenter
from core.data.sampling import Split
from core.errors import TrainingError
from core.evaluation import Predictions, summarize

CACHE_LIMIT_BYTES = 1536 * 1024**2  # above this the cut tensors are recomputed each epoch
PROGRESS_INTERVAL_S = 0.5
AUGMENT_BATCH = 32


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
    cached: bool


@dataclass(frozen=True)
class Phase:
    name: str  # head | fine-tune
    epochs: int
    learning_rate: float


def plan_phases(config: TrainConfig, frozen: int, num_blocks: int) -> list[Phase]:
    """Head only on a frozen backbone first, then fine-tune from block `frozen` at a lower rate."""
    if frozen == num_blocks:
        return [Phase("head", config.epochs, config.learning_rate)]
    fine_lr = config.learning_rate * config.fine_tune_lr_factor
    if not config.two_phase or config.epochs < 2:
        return [Phase("fine-tune", config.epochs, fine_lr)]
    head = config.head_epochs if config.head_epochs is not None else max(1, config.epochs // 2)
    head = min(max(head, 1), config.epochs - 1)
    return [Phase("head", head, config.learning_rate), Phase("fine-tune", config.epochs - head, fine_lr)]


def parameter_counts(backbone, frozen: int, num_classes: int) -> tuple[int, int]:
    """(trainable, frozen) parameters when the first `frozen` blocks are frozen, the dense head
    included; BatchNorm moving statistics never train, so they count as frozen."""
    infos = backbone.block_infos
    trainable = sum(b.trainable_params for b in infos[frozen:]) + backbone.feature_dim * num_classes + num_classes
    total = sum(b.params for b in infos) + backbone.feature_dim * num_classes + num_classes
    return trainable, total - trainable


def _chain(blocks, x):
    for block in blocks:
        x = block(x, training=False)
    return x


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


class SelectiveModel(tf_keras.Model):
    """A functional model whose training step updates only `selected` variables.

    hub.KerasLayer has a single trainable flag; this is how part of an opaque layer stays
    frozen: the layer is loaded trainable, called with training=False (BatchNorm keeps its
    moving statistics), and gradients are applied to the variables of the unfrozen groups only."""

    selected: list = []

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            pred = self(x, training=True)
            loss = self.compiled_loss(y, pred, regularization_losses=self.losses)
        grads = tape.gradient(loss, self.selected)
        self.optimizer.apply_gradients(zip(grads, self.selected))
        self.compiled_metrics.update_state(y, pred)
        return {m.name: m.result() for m in self.metrics}


def _labels(items, classes) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[i.label] for i in items], dtype=np.int32)


def run_batches(model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Inference over x in batches through one traced function (a fixed signature, so the last
    partial batch does not retrace). On a 2-core CPU this is ~1.5x faster than model.predict."""
    if len(x) == 0:
        return np.zeros((0, *model.output_shape[1:]), np.float32)
    key = (tuple(x.shape[1:]), str(x.dtype))
    functions = model.__dict__.setdefault("_studio_inference", {})  # traced once per model and input kind
    if key not in functions:
        spec = tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype))
        functions[key] = tf.function(lambda t: model(t, training=False), input_signature=[spec])
    function = functions[key]
    return np.concatenate([function(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)])


def _vectors_suffice(config: TrainConfig, split: Split, dim: int) -> bool:
    """Whether a run whose every block is frozen trains on cached feature vectors of width dim only:
    every image's vector fits the cache and, with augmentation, so do every epoch's (dense head)."""
    vector_bytes = dim * 4
    if (len(split.train) + len(split.val) + len(split.test)) * vector_bytes > CACHE_LIMIT_BYTES:
        return False
    return not config.augment.enabled or (
        config.head == "dense" and config.epochs * len(split.train) * vector_bytes <= CACHE_LIMIT_BYTES)


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


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def build_head(num_classes: int, dropout: float) -> tf_keras.Sequential:
    return tf_keras.Sequential([tf_keras.layers.Dropout(dropout, name="head_dropout"),
                                tf_keras.layers.Dense(num_classes, activation="softmax", name="head_dense")],
                               name="classifier")


def fit_sklearn_head(kind: str, train_x, train_y, seed: int):
    """Logistic regression or linear SVM on standardised feature vectors."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    model = LogisticRegression(max_iter=2000, random_state=seed) if kind == "logreg" else \
        LinearSVC(C=1.0, max_iter=5000, random_state=seed)
    pipeline = make_pipeline(StandardScaler(), model)
    pipeline.fit(train_x, train_y)
    return pipeline


def sklearn_head_weights(pipeline, num_classes: int) -> dict[str, np.ndarray]:
    scaler, model = pipeline[0], pipeline[1]
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1 and num_classes == 2:  # binary: one row of scores for class 1
        coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    return {"classifier/mean": scaler.mean_, "classifier/scale": scaler.scale_, "classifier/coef": coef, "classifier/intercept": intercept}


def sklearn_head_probs(weights: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """Class probabilities from saved linear-head weights: softmax of the decision scores.

    For logistic regression this equals predict_proba (binary: the halved, mirrored rows make
    the softmax a sigmoid); for the SVM it turns margins into scores that rank like its decisions."""
    z = (features - weights["classifier/mean"]) / weights["classifier/scale"]
    return _softmax(z @ weights["classifier/coef"].T + weights["classifier/intercept"])


def train(config: TrainConfig, split: Split, progress: Callable[[Progress], None] | None = None,
          should_stop: Callable[[], bool] | None = None, on_epoch: Callable[[list[dict]], None] | None = None,
          strategy: tf.distribute.Strategy | None = None) -> TrainResult:
    config.validate()
    tf_keras.utils.set_random_seed(config.seed)
    timings: dict[str, float | str] = {}
    classes = split.classes

    def scope():  # a fresh context each time: a strategy's scope object is single-use
        return strategy.scope() if strategy is not None else contextlib.nullcontext()

    augment = config.augment.enabled
    t = time.monotonic()
    # Nothing to fine-tune: the converted forward is the whole backbone, so the TensorFlow model (about
    # 4 s to build on a 2-core CPU) is never needed, as long as the trainer only needs vectors.
    whole = lite_forward.whole_backbone(config.backbone, config.image_size, config.resolved_frozen) if (
        config.cache_features and strategy is None) else None
    if whole is not None and not _vectors_suffice(config, split, whole.feature_dim):
        whole = None
    if whole is not None:
        backbone = None
        size, num_blocks, feature_dim = whole.input_size, whole.num_blocks, whole.feature_dim
    else:
        with scope():
            backbone = load_backbone(config.backbone, config.image_size)
        size, num_blocks, feature_dim = backbone.input_size, backbone.num_blocks, backbone.feature_dim
    timings["load_seconds"] = time.monotonic() - t
    frozen = config.resolved_frozen(num_blocks)

    t = time.monotonic()

    def decode_progress(done, total):
        if progress:
            progress(Progress("decode", batch=done, batches=total))

    parts = {name: getattr(split, name) for name in ("train", "val", "test")}
    everything = [*parts["train"], *parts["val"], *parts["test"]]
    all_images = load_arrays(everything, size, progress=decode_progress)
    offsets = np.cumsum([0] + [len(parts[n]) for n in ("train", "val", "test")])
    images = {n: all_images[offsets[i]:offsets[i + 1]] for i, n in enumerate(("train", "val", "test"))}
    labels = {n: _labels(parts[n], classes) for n in parts}
    timings["decode_seconds"] = time.monotonic() - t

    phases = plan_phases(config, frozen, num_blocks)
    if whole is not None:
        trainable_params, frozen_params = feature_dim * len(classes) + len(classes), whole.params
    else:
        trainable_params, frozen_params = parameter_counts(backbone, frozen, len(classes))

    with scope():
        blocks = None if whole is not None or not backbone.layered else backbone.blocks
        if blocks is not None:
            for i, block in enumerate(blocks):
                block.trainable = i >= frozen
        image_in = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
        scaled = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
        if whole is not None:
            frozen_model = None
        elif blocks is not None:
            frozen_model = tf_keras.Model(image_in, _chain(blocks[:frozen], scaled), name="frozen_part")
        else:
            frozen_model = tf_keras.Model(image_in, backbone.layer(scaled, training=False), name="frozen_part")
        cut_shape = (feature_dim,) if whole is not None else tuple(frozen_model.output_shape[1:])
        trainable_blocks = blocks[frozen:] if blocks is not None else []

    cache_bytes = len(all_images) * int(np.prod(cut_shape)) * 4
    opaque_fine_tune = blocks is None and whole is None and frozen < num_blocks  # an opaque layer cannot be cut
    # Cut tensors of the un-augmented images: training input without augmentation; with it, still
    # validation and final evaluation.
    use_cuts = config.cache_features and cache_bytes <= CACHE_LIMIT_BYTES and not opaque_fine_tune
    cached = use_cuts and not augment

    if whole is not None:
        fast = whole.forward
    else:
        fast = lite_forward.forward_for(config.backbone, size, frozen) if blocks is not None and use_cuts else None
    frozen_forward = fast or (lambda x: run_batches(frozen_model, x))
    timings["frozen_forward"] = "tflite" if fast else "tensorflow"

    t = time.monotonic()
    cuts = images
    if use_cuts:
        if progress:
            progress(Progress("features", batches=len(all_images)))
        cut_all = frozen_forward(all_images)
        cuts = {n: cut_all[offsets[i]:offsets[i + 1]] for i, n in enumerate(("train", "val", "test"))}
    inputs = cuts if cached else images
    timings["features_seconds"] = time.monotonic() - t
    per_epoch = None  # every epoch's augmented training features, when every block is frozen
    if augment and use_cuts and frozen == num_blocks and _vectors_suffice(config, split, int(np.prod(cut_shape))):
        t = time.monotonic()
        per_epoch = _augmented_features(ArrayAugmenter(config.augment, config.seed), frozen_forward, images["train"],
                                        config.epochs, progress, should_stop)
        timings["augment_seconds"] = time.monotonic() - t

    history: list[dict] = []

    if config.head != "dense":
        t = time.monotonic()
        if progress:
            progress(Progress("fit", epoch=1, epochs=1))
        pipeline = fit_sklearn_head(config.head, inputs["train"], labels["train"], config.seed)
        weights = sklearn_head_weights(pipeline, len(classes))
        probs = {n: sklearn_head_probs(weights, inputs[n]) if len(inputs[n]) else
                 np.zeros((0, len(classes))) for n in inputs}
        train_acc = float((probs["train"].argmax(1) == labels["train"]).mean())
        val_acc = float((probs["val"].argmax(1) == labels["val"]).mean()) if len(labels["val"]) else None
        history.append({"epoch": 1, "phase": "fit", "learning_rate": None, "seconds": time.monotonic() - t,
                        "loss": None, "accuracy": train_acc, "val_loss": None, "val_accuracy": val_acc})
        if on_epoch:
            on_epoch(list(history))
        timings["fit_seconds"] = time.monotonic() - t
    else:
        tf_keras.utils.set_random_seed(config.seed)  # the head starts the same whether or not a backbone was built
        with scope():
            head = build_head(len(classes), config.dropout)
            cut_in = tf_keras.Input(cut_shape, name="cut")
            vector = _chain(trainable_blocks, cut_in)
            trainable_model = tf_keras.Model(cut_in, head(vector), name="trainable_part")
            vector_model = tf_keras.Model(cut_in, vector, name="to_vectors")
            vector_in = tf_keras.Input((feature_dim,), name="vector")
            head_model = tf_keras.Model(vector_in, head(vector_in), name="head_only")
            if cached or per_epoch is not None:
                fit_model = trainable_model
            else:
                x = build_augmenter(config.augment, config.seed)(scaled) if augment else scaled
                if blocks is not None:
                    fit_model = tf_keras.Model(image_in, trainable_model(_chain(blocks[:frozen], x)),
                                               name="full_model")
                else:
                    fit_model = SelectiveModel(image_in, head(backbone.layer(x, training=False)), name="full_model")
        unfrozen_groups = [v for _, vs in backbone.variable_groups()[frozen:] for v in vs
                           if v.trainable] if backbone is not None and not backbone.layered else []
        epoch_offset = 1
        for phase in phases:
            for block in trainable_blocks:
                block.trainable = phase.name == "fine-tune"
            phase_model, phase_inputs = fit_model, inputs
            if cached and phase.name == "head" and trainable_blocks:
                # Blocks after the cut are frozen in this phase too: their vectors are computed once.
                phase_model = head_model
                phase_inputs = {n: run_batches(vector_model, inputs[n]) for n in inputs}
            if isinstance(phase_model, SelectiveModel):
                phase_model.selected = list(head.trainable_variables) + (
                    unfrozen_groups if phase.name == "fine-tune" else [])
            t = time.monotonic()
            with scope():
                phase_model.compile(optimizer=tf_keras.optimizers.Adam(phase.learning_rate),
                                    loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            batches = max(1, math.ceil(len(labels["train"]) / config.batch_size))
            monitor = _Monitor(phase, epoch_offset, config.epochs, batches, progress, should_stop, on_epoch, history)
            callbacks = [monitor]
            has_val = len(labels["val"]) > 0
            validation = (phase_inputs["val"], labels["val"]) if has_val else None
            if has_val and use_cuts and not cached:
                callbacks.insert(0, _CachedValidation(trainable_model, cuts["val"], labels["val"]))
                validation = None
            if config.early_stopping > 0 and has_val:
                callbacks.append(tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.early_stopping,
                                                                  restore_best_weights=True))
            if per_epoch is not None:  # vectors in: the frozen part ran in _augmented_features
                train_data = dict(x=_EpochFeatures(per_epoch, labels["train"], config.batch_size, config.seed),
                                  shuffle=False)
            else:
                train_data = dict(x=phase_inputs["train"], y=labels["train"], batch_size=config.batch_size,
                                  shuffle=True)
            phase_model.fit(**train_data, epochs=phase.epochs, validation_data=validation, callbacks=callbacks,
                            verbose=0)
            timings[f"{phase.name}_seconds"] = time.monotonic() - t
            if monitor.cancelled:
                raise Cancelled(f"cancelled during epoch {history[-1]['epoch'] + 1 if history else 1}")
            epoch_offset += phase.epochs
        t = time.monotonic()
        if progress:
            progress(Progress("evaluate"))
        probs = {n: run_batches(trainable_model, cuts[n]) if use_cuts else run_batches(fit_model, images[n])
                 for n in parts}
        timings["evaluate_seconds"] = time.monotonic() - t
        weights = {f"classifier/{i}": w for i, w in enumerate(head.get_weights())}
        if any(p.name == "fine-tune" for p in phases):
            for block in trainable_blocks:
                for i, w in enumerate(block.get_weights()):
                    weights[f"{block.name}/{i}"] = w
            for var in unfrozen_groups:
                weights[f"hub/{var.name}"] = var.numpy()

    predictions = {n: Predictions(tuple(i.relpath for i in parts[n]), labels[n], probs[n], classes) for n in parts}
    metrics = summarize(predictions)
    return TrainResult(history, predictions, metrics, timings, weights, trainable_params, frozen_params, cached)
