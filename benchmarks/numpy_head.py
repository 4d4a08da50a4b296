"""A frozen run's dense head trained in numpy (issue 28) against the Keras head it replaced, on the demo
datasets' real feature vectors (the converted TFLite forward, the default run's sample and split) and the
issue's settings: 50 images per class, 20 epochs, every default otherwise. Three seeds each, for both heads,
on the same vectors; then validation accuracy (mean and std), seconds, and the history's columns.

    .venv/bin/python -m benchmarks.numpy_head          # about 2 minutes on a 2-core CPU, models setup
"""

from __future__ import annotations

import json
import time

import numpy as np

from core.training.config import TrainConfig
from core.training.context import TrainingContext
from core.training.numpy_fit import fit_dense_numpy
from core.training.split import sample_split
from core.training.trainer import set_up

DATASETS = ("digits", "faces")
SEEDS = (0, 1, 2)


def _keras(config: TrainConfig, setup, num_classes: int):
    """The Keras path the trainer took for this head before: its models and its fit."""
    from core.training.dense import build_models, fit_dense

    ctx = TrainingContext(config=config, progress=None, should_stop=None, on_epoch=None, strategy=None)
    models = build_models(ctx, setup.plan, None, setup.summary, num_classes)
    return ctx, fit_dense(ctx, setup.plan, models, setup.inputs)


def _numpy(config: TrainConfig, setup, num_classes: int):
    ctx = TrainingContext(config=config, progress=None, should_stop=None, on_epoch=None, strategy=None)
    return ctx, fit_dense_numpy(ctx, setup.plan, setup.inputs, num_classes)[1]


def compare(dataset: str) -> dict:
    config = TrainConfig(dataset=dataset, per_class=50, epochs=20)
    split = sample_split(config).split
    setup = set_up(config, split)
    labels, classes = setup.inputs.labels["val"], len(split.classes)
    found = {}
    for name, fit in (("numpy", _numpy), ("keras", _keras)):
        accuracies, seconds, columns = [], [], None
        for seed in SEEDS:
            start = time.perf_counter()
            ctx, probs = fit(config.with_(seed=seed), setup, classes)
            seconds.append(time.perf_counter() - start)
            accuracies.append(float((probs["val"].argmax(1) == labels).mean()))
            columns = sorted(ctx.history[0])
        found[name] = {"val_accuracy": accuracies, "mean": float(np.mean(accuracies)),
                       "std": float(np.std(accuracies)), "seconds": [round(s, 2) for s in seconds],
                       "columns": columns}
    row = {"dataset": dataset, "train": len(split.train), "val": len(split.val), **found,
           "difference_points": round(100 * (found["numpy"]["mean"] - found["keras"]["mean"]), 2),
           "same_columns": found["numpy"]["columns"] == found["keras"]["columns"]}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    for dataset in DATASETS:
        compare(dataset)


if __name__ == "__main__":
    main()
