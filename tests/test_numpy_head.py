"""A run whose every block is frozen trains its dense head in numpy (core.model.heads.softmax_fit): as Keras
does it, to within what a different random stream allows, and without loading TensorFlow."""

import os
import subprocess
import sys

import numpy as np
import pytest

from core.model.heads import DenseHead
from core.model.heads.softmax_fit import SoftmaxFit, sample_weights
from tests.helpers import PROJECT_DIR


def digit_vectors(n_per_class: int = 20, seed: int = 0):
    """Flattened 8x8 digits (64 features), scaled: a 10-class problem where heads differ a little."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    picked = np.concatenate([rng.permutation(np.flatnonzero(digits.target == c))[:2 * n_per_class]
                             for c in range(10)])
    x, y = (digits.data[picked] / 16.0).astype(np.float32), digits.target[picked]
    train = np.arange(len(y)) % 2 == 0
    return x[train], y[train], x[~train], y[~train]


def keras_head_accuracy(x, y, xv, yv, seed: int, epochs: int = 10) -> float:
    """The head as the trainer trained it before: Keras' Dropout -> Dense(softmax), Adam, fit()."""
    from core.tf import tf_keras

    tf_keras.utils.set_random_seed(seed)
    head = DenseHead(10, 0.2).build(x.shape[1])
    head.layer.compile(optimizer=tf_keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    head.layer.fit(x, y, batch_size=32, epochs=epochs, shuffle=True, verbose=0)
    return float((head.probs(xv).argmax(1) == yv).mean())


def numpy_head_accuracy(x, y, xv, yv, seed: int, epochs: int = 10) -> float:
    fit = SoftmaxFit(x.shape[1], 10, learning_rate=1e-2, dropout=0.2, seed=seed)
    for _ in range(epochs):
        fit.epoch(x, y, sample_weights(y, None), 32)
    return fit.evaluate(xv, yv)[1]


def test_the_numpy_head_learns_as_keras_does():
    """Three seeds each on the same digits: the mean validation accuracies within 3 points (BENCHMARKS.md has
    the ±1 point comparison on the demo datasets' real feature vectors)."""
    x, y, xv, yv = digit_vectors()
    numpy_mean = np.mean([numpy_head_accuracy(x, y, xv, yv, seed) for seed in range(3)])
    keras_mean = np.mean([keras_head_accuracy(x, y, xv, yv, seed) for seed in range(3)])
    assert numpy_mean > 0.8 and abs(numpy_mean - keras_mean) <= 0.03, (numpy_mean, keras_mean)


def test_its_weights_load_into_the_keras_layer_with_the_same_probabilities():
    x, y, xv, _ = digit_vectors()
    head = DenseHead(10, 0.2).fit(x, y, 10, seed=1)
    head.calibrate(1.7)
    keras = head.keras_layer()(xv, training=False).numpy()
    assert np.abs(keras - head.probs(xv)).max() < 1e-5


def test_adam_and_dropout_follow_keras_on_one_step():
    """One update from the same start, without dropout: Keras' Adam and this one move the weights alike."""
    from core.tf import tf_keras

    x, y, _, _ = digit_vectors(5)
    fit = SoftmaxFit(x.shape[1], 10, learning_rate=1e-2, dropout=0.0, seed=0)
    start = fit.get()
    fit.step(x[:32], y[:32], np.ones(32, np.float32))
    layer = tf_keras.Sequential([tf_keras.layers.Dense(10, activation="softmax")])
    layer.build((None, x.shape[1]))
    layer.set_weights(start)
    layer.compile(optimizer=tf_keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    layer.train_on_batch(x[:32], y[:32])
    for mine, theirs in zip(fit.get(), layer.get_weights(), strict=False):
        assert np.abs(mine - theirs).max() < 1e-5


@pytest.mark.usefixtures("prepared")
def test_a_frozen_run_never_imports_tensorflow(tmp_path):
    """In a fresh process, as a worker: a default run (every block frozen, the converted TFLite forward) and
    an augmented one (each epoch's images through the same forward) scan, train, evaluate and save without
    TensorFlow in sys.modules."""
    script = f"""
import sys
from pathlib import Path
from core.data.augment import AugmentConfig
from core.runs.worker import execute
from core.runs.store import RunStore
from core.training.config import TrainConfig
from tests.helpers import make_color_folders
folder = make_color_folders(Path({str(tmp_path)!r}) / "colours", per_class=8)
base = TrainConfig(dataset=str(folder), per_class=8, epochs=3, val_fraction=0.25, test_fraction=0.0)
for config in (base, base.with_(augment=AugmentConfig.standard())):
    run = RunStore.default().create(config)
    execute(RunStore.default(), run.id)
    done = RunStore.default().load(run.id)
    print(done.state, done.metrics().get("val_accuracy"), len(done.history()))
print("tensorflow" in sys.modules, "tf_keras" in sys.modules)
"""
    env = {**os.environ, "STUDIO_RUNS_DIR": str(tmp_path / "runs")}
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()[-3:]
    for line in lines[:2]:
        state, accuracy, epochs = line.split()
        assert state == "completed" and float(accuracy) == 1.0 and epochs == "3", out.stdout
    assert lines[2] == "False False", out.stdout
