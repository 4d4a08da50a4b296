"""Benchmarks: the studio against a plain Keras baseline on the same data, in one process.

    .venv/bin/python -m benchmarks.run           # about 14 minutes on a 2-core CPU
    .venv/bin/python -m benchmarks.run --full    # adds 150 images per class (about 40 minutes more)

One JSON line per measurement. See BENCHMARKS.md for a measured run and what each line means.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import core  # noqa: F401  (Keras 2 before TensorFlow)
from benchmarks.baseline import train_baseline
from core import paths
from core.backbones.registry import DEFAULT_BACKBONE
from core.data.augment import AugmentConfig
from core.data.npy_cache import NpyCache
from core.data.sampling import sample, split
from core.data.sources import load_dataset
from core.features import blocks
from core.runs.store import RunStore
from core.training.config import TrainConfig

CASES = {
    "all blocks frozen": TrainConfig(epochs=20),
    "last 3 blocks trainable": TrainConfig(epochs=20, frozen_blocks=15),
    "all frozen + augmentation": TrainConfig(epochs=20, augment=AugmentConfig.standard()),
}


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def digits_split(per_class: int, seed: int = 0):
    return split(sample(load_dataset("digits"), per_class=per_class, seed=seed).items, 0.2, 0.1, seed)


def compare(name: str, config: TrainConfig, parts) -> dict:
    """(a) the trainer vs the baseline: wall time (decoding and backbone loading included) and accuracy."""
    from core.training.trainer import train

    start = time.perf_counter()
    ours = train(config, parts)
    ours_s = time.perf_counter() - start
    base = train_baseline(config, parts)
    return emit({"measure": "a", "case": name, "train_images": len(parts.train), "val_images": len(parts.val),
                 "epochs": config.epochs, "studio_s": round(ours_s, 1), "baseline_s": round(base["seconds"], 1),
                 "speedup": round(base["seconds"] / ours_s, 2),
                 "studio_val_acc": round(ours.metrics["val_accuracy"], 3),
                 "baseline_val_acc": round(base["val_accuracy"], 3),
                 "studio_parts_s": {k.removesuffix("_seconds"): round(v, 1) for k, v in ours.timings.items()
                                    if k.endswith("_seconds")}})


def throughput(parts) -> dict:
    """(b) the trainer's feature extraction (TFLite when prepared, else TensorFlow) and TensorFlow's
    own pipeline, against the raw TensorFlow forward of the model: same images, same run."""
    from core.backbones import load_backbone, tflite_convert, tflite_run
    from core.backbones.forward import run_batches
    from core.data.arrays import item_arrays
    from core.tf import tf

    backbone = load_backbone(DEFAULT_BACKBONE)
    images = item_arrays(parts.train[:256], backbone.input_size, cache=None)
    floats = tf.constant(images.astype(np.float32) / 255.0)
    raw = tf.function(lambda x: backbone.feature_model(x, training=False))

    def raw_pass():
        for i in range(0, len(images), 32):
            raw(floats[i:i + 32]).numpy()

    frozen = tflite_convert.frozen_part(backbone.blocks, backbone.input_size, backbone.num_blocks)
    fast = tflite_run.forward_for(DEFAULT_BACKBONE, backbone.input_size, backbone.num_blocks)

    def best_of(fn, reps=3):
        fn()  # warm-up: tracing and kernel selection
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return len(images) / min(times)

    raw_ips = best_of(raw_pass)
    tf_ips = best_of(lambda: run_batches(frozen, images))
    studio_ips = best_of(lambda: fast(images)) if fast else tf_ips
    return emit({"measure": "b", "images": len(images), "batch": 32, "raw_tf_forward_img_s": round(raw_ips, 1),
                 "tf_pipeline_img_s": round(tf_ips, 1), "studio_engine": "tflite" if fast else "tensorflow",
                 "studio_img_s": round(studio_ips, 1), "studio_vs_raw_tf": round(studio_ips / raw_ips, 3),
                 "tf_pipeline_vs_raw_tf": round(tf_ips / raw_ips, 3),
                 "studio_vs_170_reference": round(studio_ips / 170.0, 3)})


def prediction_latency(run_id: str, parts) -> dict:
    """(c) warm single-image prediction, PNG decoding included, over 50 images."""
    from core.inference.predict import predict_sources

    files = [(i.relpath, Path(i.path).read_bytes()) for i in parts.val[:50]]
    predict_sources(RunStore.default(), run_id, files[:1])  # warm
    times = []
    for name, data in files:
        start = time.perf_counter()
        predict_sources(RunStore.default(), run_id, [(name, data)])
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    return emit({"measure": "c", "images": len(files), "p50_ms": round(float(np.percentile(ms, 50)), 1),
                 "p95_ms": round(float(np.percentile(ms, 95)), 1)})


def cold_start(run_id: str, image_path: str) -> dict:
    """(d) from process start to the first prediction printed by `python -m core predict`."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", "predict", run_id, image_path], cwd=paths.PROJECT_DIR,
                         capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    assert json.loads(out.stdout.strip().splitlines()[-1])["top"]
    return emit({"measure": "d", "cold_start_s": round(seconds, 2)})


def worker_peak_memory(per_class: int) -> dict:
    """(e) peak resident memory of a real worker process training on per_class x 10 digits at 224x224."""
    from core.runs.store import RunStore

    run = RunStore.default().create(TrainConfig(dataset="digits", per_class=per_class, epochs=5))
    start = time.perf_counter()
    worker = subprocess.Popen([sys.executable, "-m", "core", "worker"], cwd=paths.PROJECT_DIR,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, code, usage = os.wait4(worker.pid, 0)  # this worker's own peak, not the largest child's so far
    worker.returncode = os.waitstatus_to_exitcode(code)
    assert worker.returncode == 0, f"worker exited with {worker.returncode}"
    peak_kib = usage.ru_maxrss
    done = RunStore.default().load(run.id)
    return emit({"measure": "e", "images": per_class * 10, "state": done.state,
                 "seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(peak_kib / 1024)})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="also 150 images per class")
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_RUNS_DIR", str(paths.studio_home() / "benchmark-runs"))
    # (a) times training from images: vectors an earlier analysis stored must not be read.
    blocks.CACHE = NpyCache(tempfile.mkdtemp(prefix="benchmark-blocks-"), blocks.CACHE.max_bytes)
    emit({"machine": f"{os.cpu_count()} cores", "python": sys.version.split()[0]})
    from core.backbones import bundled

    start = time.perf_counter()  # `make run` does this once; both sides then use the same converted weights
    emit({"prepare": bundled.prepare(), "seconds": round(time.perf_counter() - start, 1)})
    for per_class in (50, 150) if args.full else (50,):
        parts = digits_split(per_class)
        for name, config in CASES.items():
            compare(f"{name}, {per_class}/class", config, parts)
    parts = digits_split(50)
    throughput(parts)
    from core.runs import jobs

    run_id = jobs.submit(RunStore.default(), TrainConfig(dataset="digits", per_class=50, epochs=5))
    jobs.wait(RunStore.default(), run_id, timeout=900)
    prediction_latency(run_id, parts)
    cold_start(run_id, parts.val[0].path)
    worker_peak_memory(100)


if __name__ == "__main__":
    main()
