"""Benchmarks: the studio's trainer against a plain Keras baseline on the same data, in one process.

    .venv/bin/python -m benchmarks.run [--quick]

Prints one line per measurement and the ratios; see BENCHMARKS.md for a measured run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import core  # noqa: F401  (Keras 2 before TensorFlow)
from benchmarks.baseline import train_baseline
from core import paths
from core.config import TrainConfig
from core.data.augment import AugmentConfig
from core.data.sampling import sample, split
from core.data.sources import load_dataset
from core.training import train


def digits_split(per_class: int, seed: int = 0):
    return split(sample(load_dataset("digits"), per_class=per_class, seed=seed).items, 0.2, 0.1, seed)


def compare(name: str, config: TrainConfig, parts) -> dict:
    start = time.perf_counter()
    ours = train(config, parts)
    ours_s = time.perf_counter() - start
    base = train_baseline(config, parts)
    row = {"case": name, "train_images": len(parts.train), "epochs": config.epochs,
           "studio_s": round(ours_s, 1), "baseline_s": round(base["seconds"], 1),
           "speedup": round(base["seconds"] / ours_s, 1),
           "studio_val_acc": round(ours.metrics["val_accuracy"], 3),
           "baseline_val_acc": round(base["val_accuracy"], 3)}
    print(json.dumps(row), flush=True)
    return row


def worker_peak_memory(per_class: int) -> dict:
    """Peak resident memory of a real worker process training on per_class x 10 digits at 224x224."""
    from core.runs import create_run, load_run

    config = TrainConfig(dataset="digits", per_class=per_class, epochs=5)
    run = create_run(config)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core", "worker"], cwd=paths.PROJECT_DIR, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = load_run(run.id)
    row = {"case": f"worker peak memory, {per_class * 10} images", "state": done.state,
           "seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(peak_kib / 1024),
           "val_acc": done.metrics().get("val_accuracy")}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer cases, for a smoke run")
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_RUNS_DIR", str(paths.studio_home() / "benchmark-runs"))
    print(json.dumps({"machine": f"{os.cpu_count()} cores", "python": sys.version.split()[0]}), flush=True)
    parts50 = digits_split(50)
    compare("all frozen, 50/class", TrainConfig(epochs=20), parts50)
    if not args.quick:
        compare("last 3 blocks trainable, 50/class", TrainConfig(epochs=20, frozen_blocks=15), parts50)
        compare("all frozen + augmentation, 50/class", TrainConfig(epochs=20, augment=AugmentConfig.standard()),
                parts50)
        worker_peak_memory(100)


if __name__ == "__main__":
    main()
