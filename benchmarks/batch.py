"""Batch prediction: `core predict RUN batch.zip --csv` as its own process, against plain Keras.

    .venv/bin/python -m benchmarks.batch            # about 3 minutes on a 2-core CPU

A fresh studio home (the converted models copied) trains the default run (digits, 20 per class, every
block frozen). Two zips are made from scikit-image's sample photographs, each image shifted and with
its own noise as benchmarks.photos makes them: 300 JPEGs of 1024x768 (quality 92; the size the studio
keeps an uploaded photo at) and 60 phone-sized 12-megapixel JPEGs. Each zip goes through `core predict
--csv` as its own process (wall time from start to exit, CSV rows, peak memory); then, in this process,
the same images through the plain Keras way: Pillow decode and resize, the bundled backbone and the
run's dense head as one tf_keras model, model.predict (TensorFlow already imported, model build included).
One JSON line per measurement; BENCHMARKS.md holds a measured run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.photos import SOURCES, emit, fresh_home
from core import paths
from core.runs.store import RunStore


def make_zip(path: Path, count: int, size: tuple[int, int], seed: int = 0) -> Path:
    from skimage import data

    rng = np.random.default_rng(seed)
    bases = [np.asarray(Image.fromarray(getattr(data, s)()).convert("RGB").resize(size, Image.BICUBIC))
             for s in SOURCES]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:  # JPEGs do not compress further
        for i in range(count):
            shift = rng.integers(-size[0] // 10, size[0] // 10, 2)
            noisy = np.roll(bases[i % len(bases)], tuple(shift), axis=(0, 1)).astype(np.int16)
            noisy += rng.integers(-10, 11, noisy.shape)
            buf = io.BytesIO()
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
            archive.writestr(f"photos/{i:03d}.jpg", buf.getvalue())
    return path


def train(env: dict) -> str:
    out = subprocess.run([sys.executable, "-m", "core", "train", "--data", "digits", "--per-class", "20"],
                         cwd=paths.PROJECT_DIR, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"core train failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["run_id"]


def studio(run_id: str, archive: Path, env: dict) -> dict:
    out_csv = archive.with_suffix(".csv")
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "core", "predict", run_id, str(archive),
                          "--csv", str(out_csv)], cwd=paths.PROJECT_DIR, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"core predict failed: {out.stderr[-2000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    peak = next((int(line.split(":")[1]) for line in out.stderr.splitlines() if "Maximum resident" in line), 0)
    with out_csv.open() as f:
        rows = sum(1 for _ in csv.DictReader(f))
    return {"process_s": round(seconds, 2), "inside_s": summary["seconds"], "csv_rows": rows,
            "engine": summary["engine"], "images_per_s": round(rows / seconds, 1), "peak_rss_mb": round(peak / 1024)}


def keras_baseline(run_id: str, archive: Path) -> dict:
    """The tutorial way: decode and resize with Pillow, one Keras model (backbone + the run's head), predict."""
    from core.backbones import load_backbone
    from core.tf import tf_keras

    start = time.perf_counter()
    weights = RunStore.default().load(run_id).weights()
    backbone = load_backbone("efficientnet_lite0")
    inputs = tf_keras.Input(backbone.image_shape)
    head = tf_keras.layers.Dense(weights["classifier/0"].shape[1], activation="softmax")
    model = tf_keras.Model(inputs, head(backbone.feature_model(inputs / 255.0)))
    head.set_weights([weights["classifier/0"], weights["classifier/1"]])
    with zipfile.ZipFile(archive) as z:
        images = np.stack([np.asarray(Image.open(io.BytesIO(z.read(n))).convert("RGB").resize((224, 224)))
                           for n in z.namelist()])
    probs = model.predict(images.astype(np.float32), batch_size=32, verbose=0)
    seconds = time.perf_counter() - start
    return {"baseline_s": round(seconds, 2), "baseline_images_per_s": round(len(probs) / seconds, 1)}


def main() -> None:
    if not (paths.models_dir() / "tflite").is_dir():
        raise SystemExit("Prepare the bundled model first: make run, or .venv/bin/python -m core prepare")
    work = Path(tempfile.mkdtemp(prefix="batch-"))
    try:
        env = fresh_home(work)
        os.environ.update(env)  # the baseline reads the run in this process
        run_id = train(env)
        for count, size in ((300, (1024, 768)), (60, (4032, 3024))):
            archive = make_zip(work / f"{count}x{size[0]}.zip", count, size)
            result = studio(run_id, archive, env)
            baseline = keras_baseline(run_id, archive)
            emit({"measure": "core predict --csv, whole process", "images": count, "size": f"{size[0]}x{size[1]}",
                  "zip_mb": round(archive.stat().st_size / 1e6), **result, **baseline,
                  "speedup_vs_keras": round(baseline["baseline_s"] / result["process_s"], 2)})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
