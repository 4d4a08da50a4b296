"""Which backbone (issue 31): the comparison's cost, and whether its suggestion picks the backbone whose real run
wins.

    .venv/bin/python -m benchmarks.backbones [--cold]     # about 15 minutes on a 2-core CPU (--cold: 0 and 1)

0. Cold with `make run`'s background conversion: the comparison after it, and at once while it converts.
1. Whole process, as a user runs it: `python -m core analyze --data digits --per-class 25 --models
   efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,random_init` in a fresh studio home whose model
   store holds what `make run` prepares (Lite0 only), then the same command again. Wall seconds, peak memory.
2. Peak memory of the block vectors of 1,000 digits through each backbone at its own input size (one process
   each, fresh feature store).
3. Baseline: the plain Keras feature model's predict() on the same 64 images in the same process, against the
   engine the comparison times (the images/s column): the ratio.
4. Real runs: on digits and faces, 50 images per class (faces: 50 of its 100 a class), the comparison, then a
   default feature-extraction run per pretrained backbone (`core train`); the suggestion against the runs'
   test accuracy, and each probe's distance from its run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.photos import emit

MODELS = "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2,random_init"
PRETRAINED = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def _run(args: list[str], env: dict) -> tuple[dict, float, float]:
    """(last JSON line, wall seconds, peak RSS in MB) of `python -m core ARGS`."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "core", *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    out = process.stdout.read()
    _, code, usage = os.wait4(process.pid, 0)
    if code:
        raise SystemExit(f"core {' '.join(args)} failed ({code}):\n{out[-2000:]}")
    return json.loads(out.strip().splitlines()[-1]), time.perf_counter() - start, usage.ru_maxrss / 1024


def _home(models: Path) -> dict:
    env = dict(os.environ, STUDIO_HOME=tempfile.mkdtemp(prefix="bench-backbones-"), STUDIO_MODELS_DIR=str(models))
    env.pop("STUDIO_RUNS_DIR", None)
    return env


def whole_process(models: Path) -> None:
    env = _home(models)
    for attempt in ("first", "second"):
        line, seconds, peak = _run(["analyze", "--data", "digits", "--per-class", "25", "--models", MODELS], env)
        emit({"bench": "compare digits 25/class, 4 backbones", "time": attempt, "seconds": round(seconds, 1),
              "peak_rss_mb": round(peak), "suggested": line["suggested"]["model"],
              "rows": {b["model"]: [round(b["best_accuracy"], 3), round(b["images_per_second"]), b["engine"]]
                       for b in line["backbones"]}})


def cold_with_background(models: Path) -> None:
    """Issue 44: `make run` converts Lite1 and Lite2 in the background (niced) once the app serves. (a) The
    comparison asked for once that is done; (b) asked for at once, as the conversion starts: it waits for the
    conversion's lock, then finds the files made."""
    for when in ("after the background conversion", "at once, while it converts"):
        store = Path(tempfile.mkdtemp(prefix="bench-models-cold-"))
        shutil.copytree(models, store, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*lite1*", "*lite2*", ".lock"))
        env = _home(store)
        start = time.perf_counter()
        later = subprocess.Popen(["nice", "-n", "19", sys.executable, "-m", "core", "prepare", "--models",
                                  "efficientnet_lite1,efficientnet_lite2"], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        if when.startswith("after"):
            later.wait()
            emit({"bench": "background conversion of Lite1 and Lite2",
                  "seconds": round(time.perf_counter() - start, 1)})
        line, seconds, peak = _run(["analyze", "--data", "digits", "--per-class", "25", "--models", MODELS], env)
        later.wait()
        emit({"bench": "compare digits 25/class, 4 backbones, cold studio home", "when": when,
              "seconds": round(seconds, 1), "peak_rss_mb": round(peak), "suggested": line["suggested"]["model"]})
        shutil.rmtree(store, ignore_errors=True)


def memory_at_1000(models: Path) -> None:
    code = ("import sys; from core.data.sampling import sample; from core.data.sources import load_dataset; "
            "from core.features.blocks import block_vectors; "
            "items = sample(load_dataset('digits'), per_class=100, seed=0).items; "
            "v = block_vectors(items, sys.argv[1], None); print(v.engine, v.vectors.shape)")
    for name in (*PRETRAINED, "efficientnet_lite0_random"):
        env, start = _home(models), time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", code, name], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
        out = process.stdout.read().strip()
        _, _, usage = os.wait4(process.pid, 0)
        emit({"bench": "block vectors of 1,000 digits", "model": name, "result": out,
              "seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)})


def baseline_ratio() -> None:
    import numpy as np

    from core.analysis.compare import SPEED_IMAGES
    from core.backbones import load_backbone, tflite_run

    for name in PRETRAINED:
        backbone = load_backbone(name)
        size = backbone.input_size
        images = np.random.default_rng(0).integers(0, 256, (SPEED_IMAGES, size, size, 3), dtype=np.uint8)
        model = backbone.feature_model
        model.predict(images[:32] / 255.0, verbose=0)
        start = time.perf_counter()
        model.predict(images / 255.0, verbose=0)
        keras = SPEED_IMAGES / (time.perf_counter() - start)
        lite = tflite_run.whole_forward(name, size)
        studio = None
        if lite is not None:
            lite(images)  # warm-up, as the studio's timing does
            start = time.perf_counter()
            lite(images)
            studio = SPEED_IMAGES / (time.perf_counter() - start)
        emit({"bench": "forward images/s", "model": name, "keras_predict": round(keras, 1),
              "studio_tflite": round(studio, 1) if studio else None,
              "ratio": round(studio / keras, 2) if studio else None})


def real_runs(models: Path) -> None:
    env = _home(models)
    for demo in ("digits", "faces"):
        line, seconds, _ = _run(["analyze", "--data", demo, "--per-class", "50", "--models", MODELS], env)
        rows = {b["model"]: b for b in line["backbones"]}
        for name in PRETRAINED:
            run, run_seconds, _ = _run(["train", "--data", demo, "--per-class", "50", "--model", name], env)
            emit({"bench": "probe against real run", "demo": demo, "model": name,
                  "suggested": line["suggested"]["model"] == name, "probe_best": round(rows[name]["best_accuracy"], 3),
                  "probe_last": round(rows[name]["last_accuracy"], 3), "run_val": run["val_accuracy"],
                  "run_test": run["test_accuracy"], "test_interval": run["test_accuracy_interval"],
                  "run_seconds": round(run_seconds, 1)})
        emit({"bench": "suggestion", "demo": demo, "reason": line["suggested"]["reason"],
              "compare_seconds": round(seconds, 1)})


def main() -> None:
    """Every subprocess first, this process without TensorFlow meanwhile: a child's peak memory (wait4) counts
    the parent's resident memory at the fork, so a parent holding TensorFlow would hide the child's."""
    models = Path(tempfile.mkdtemp(prefix="bench-models-"))
    os.environ["STUDIO_MODELS_DIR"] = str(models)
    line, seconds, _ = _run(["prepare"], _home(models))  # what `make run` prepares: Lite0 alone
    emit({"bench": "prepare Lite0", "seconds": round(seconds, 1), "state": line})
    cold_with_background(models)
    if "--cold" in sys.argv:
        return
    whole_process(models)
    memory_at_1000(models)
    real_runs(models)
    baseline_ratio()


if __name__ == "__main__":
    main()
