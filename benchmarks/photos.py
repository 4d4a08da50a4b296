"""Phone photos: 12-megapixel JPEGs through `core train` and prediction, as people's own data comes.

    .venv/bin/python -m benchmarks.photos            # 60 photos, about 3 minutes on a 2-core CPU
    .venv/bin/python -m benchmarks.photos --memory   # adds the worker's peak on 500 photos (about 8 minutes)

The photos are made here from scikit-image's sample photographs (one class per photograph),
upscaled to 4032x3024, each shifted and with its own noise, saved as JPEG quality 92 (about
3 MB each, as a phone's). A fresh studio home holds the runs and the array cache (the converted
model is copied from the project's store, so `make run` or `python -m core prepare` first).
One JSON line per measurement; BENCHMARKS.md holds a measured run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from core import paths
from core.runs.store import RunStore

SOURCES = ("chelsea", "coffee", "rocket")  # one class each
SIZE = (4032, 3024)


def emit(row: dict) -> dict:
    print(json.dumps(row), flush=True)
    return row


def make_photos(root: Path, per_class: int, seed: int = 0) -> Path:
    """per_class photo-like 12 MP JPEGs in one folder per class."""
    from skimage import data

    rng = np.random.default_rng(seed)
    for label in SOURCES:
        base = np.asarray(Image.fromarray(getattr(data, label)()).convert("RGB").resize(SIZE, Image.BICUBIC))
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shift = rng.integers(-400, 400, 2)
            noisy = np.roll(base, tuple(shift), axis=(0, 1)).astype(np.int16) + rng.integers(-10, 11, base.shape)
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(root / label / f"{i:03d}.jpg", quality=92)
    return root


def cli_train(data: Path, per_class: int, env: dict) -> tuple[float, dict, int]:
    """`core train` with every block frozen as its own process: (wall seconds, metrics, worker peak MB)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", "train", "--data", str(data), "--per-class", str(per_class),
                          "--frozen-blocks", "all", "--epochs", "5"], cwd=paths.PROJECT_DIR, env=env,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"core train failed: {out.stderr[-2000:]}")
    final = json.loads(out.stdout.strip().splitlines()[-1])
    metrics = json.loads((Path(final["dir"]) / "metrics.json").read_text())
    return seconds, metrics, metrics["peak_rss_mb"]  # the worker's own peak (ru_maxrss), written at the end


def train_twice(data: Path, per_class: int, env: dict) -> None:
    """The first run decodes every photo; the second finds them all in the array cache."""
    for attempt in ("first", "second"):
        seconds, m, peak = cli_train(data, per_class, env)
        t = m["timings"]
        decoding = t["data_seconds"] + t["decode_seconds"]  # the scan decodes too, and primes the cache
        emit({"measure": "photos train", "run": attempt, "photos": per_class * len(SOURCES),
              "process_s": round(seconds, 1), "scan_s": round(t["data_seconds"], 2),
              "decode_s": round(t["decode_seconds"], 2), "frozen_forward_s": round(t["features_seconds"], 2),
              "decode_vs_forward": round(t["decode_seconds"] / max(t["features_seconds"], 1e-9), 2),
              "scan_and_decode_vs_forward": round(decoding / max(t["features_seconds"], 1e-9), 2),
              "decoded_images": t["decoded_images"], "val_accuracy": m["val_accuracy"], "worker_peak_mb": peak})


def predict_latency(data: Path, env: dict, n: int = 30) -> None:
    """Warm single-image prediction of one 12 MP JPEG, read from disk and decoded each time."""
    os.environ.update(env)
    from core.inference.predict import predict_sources

    run_id = RunStore.default().runs()[0].id
    photos = sorted(data.rglob("*.jpg"))[:n]
    predict_sources(RunStore.default(), run_id, [(photos[0].name, str(photos[0]))])  # warm: model built and traced
    times = []
    for path in photos:
        start = time.perf_counter()
        result = predict_sources(RunStore.default(), run_id, [(path.name, str(path))])
        times.append(time.perf_counter() - start)
        assert "top" in result[0], result
    ms = np.array(times) * 1000
    emit({"measure": "photo prediction", "images": len(photos), "p50_ms": round(float(np.percentile(ms, 50)), 1),
          "p95_ms": round(float(np.percentile(ms, 95)), 1)})


def fresh_home(work: Path) -> dict:
    """A studio home with the project's converted model and nothing else: no runs, no cached arrays."""
    home = work / "home"
    shutil.copytree(paths.models_dir(), home / "models")
    return {**os.environ, "STUDIO_HOME": str(home), "STUDIO_RUNS_DIR": str(home / "runs")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", action="store_true", help="also the worker's peak memory on 500 photos")
    args = parser.parse_args()
    if not (paths.models_dir() / "tflite").is_dir():
        raise SystemExit("Prepare the bundled model first: make run, or .venv/bin/python -m core prepare")
    with tempfile.TemporaryDirectory(prefix="photos-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        data = make_photos(work / "photos", 20)
        emit({"made": "60 photos", "seconds": round(time.perf_counter() - start, 1),
              "mb": round(sum(p.stat().st_size for p in data.rglob("*.jpg")) / 1024**2)})
        env = fresh_home(work)
        train_twice(data, 20, env)
        predict_latency(data, env)
        if args.memory:
            big = make_photos(work / "many", 167, seed=1)
            seconds, m, peak = cli_train(big, 167, fresh_home(work / "memory"))
            emit({"measure": "photos memory", "photos": 167 * len(SOURCES), "process_s": round(seconds, 1),
                  "decode_s": round(m["timings"]["decode_seconds"], 1), "worker_peak_mb": peak})


if __name__ == "__main__":
    main()
