"""The plain Keras baseline the benchmarks compare against: the TensorFlow transfer-learning
tutorial's way. The backbone sits inside the model (frozen blocks trainable=False, called with
training=False), model.fit runs over the images every epoch, and fine-tuning follows the
tutorial's two steps (head first, then unfreeze at a lower rate) with the same schedule as
the studio's trainer, so only the implementation differs."""

from __future__ import annotations

import time

import numpy as np

from core.backbones import load_backbone
from core.data.arrays import item_arrays
from core.data.augment import AugmentConfig
from core.data.sampling import Split
from core.tf import tf_keras
from core.training.config import TrainConfig
from core.training.plan import plan_phases


def tutorial_augmenter(config: AugmentConfig, seed: int) -> tf_keras.Sequential:
    """The tutorial's augmentation: one Keras preprocessing layer per kind of change."""
    layers = tf_keras.layers
    stack = [layers.RandomFlip("horizontal", seed=seed)] if config.flip else []
    if config.rotation > 0:
        stack.append(layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed + 1))
    if config.zoom > 0:
        stack.append(layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed + 2))
    if config.translation > 0:
        stack.append(layers.RandomTranslation(config.translation, config.translation, fill_mode="reflect",
                                              seed=seed + 3))
    if config.contrast > 0:
        stack.append(layers.RandomContrast(config.contrast, seed=seed + 4))
    return tf_keras.Sequential(stack, name="augmentation")


def train_baseline(config: TrainConfig, split: Split) -> dict:
    """Returns validation accuracy and wall time (decoding included, as for the trainer)."""
    tf_keras.utils.set_random_seed(config.seed)
    start = time.perf_counter()
    backbone = load_backbone(config.backbone, config.image_size)
    index = {c: i for i, c in enumerate(split.classes)}
    x_train = item_arrays(split.train, backbone.input_size, cache=None)
    x_val = item_arrays(split.val, backbone.input_size, cache=None)
    y_train = np.array([index[i.label] for i in split.train])
    y_val = np.array([index[i.label] for i in split.val])
    frozen = config.resolved_frozen(backbone.num_blocks)
    inputs = tf_keras.Input(backbone.image_shape, dtype="uint8")
    x = tf_keras.layers.Rescaling(1 / 255.0)(inputs)
    if config.augment.enabled:
        x = tutorial_augmenter(config.augment, config.seed)(x)
    for block in backbone.blocks:
        x = block(x, training=False)
    tf_keras.utils.set_random_seed(config.seed)  # the head starts as the trainer's does (core.training.trainer)
    x = tf_keras.layers.Dropout(config.dropout)(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(len(split.classes), activation="softmax")(x))
    history = None
    for phase in plan_phases(config, frozen, backbone.num_blocks):
        for i, block in enumerate(backbone.blocks):
            block.trainable = phase.name == "fine-tune" and i >= frozen
        model.compile(tf_keras.optimizers.Adam(phase.learning_rate), "sparse_categorical_crossentropy", ["accuracy"])
        history = model.fit(x_train, y_train, batch_size=config.batch_size, epochs=phase.epochs,
                            validation_data=(x_val, y_val), verbose=0)
    return {"seconds": time.perf_counter() - start, "val_accuracy": float(history.history["val_accuracy"][-1])}
