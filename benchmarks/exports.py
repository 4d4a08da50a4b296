"""Exports (issue 33): each format's file size and one image's prediction latency, next to the studio's own.

    .venv/bin/python -m benchmarks.exports      # about 4 minutes on a 2-core CPU

A default run (`core train --data digits`: Lite0, every block frozen, dense head) in a fresh studio home (set
STUDIO_MODELS_DIR to a store `make run` prepared, or the run converts Lite0 first). Each format is exported
(and checked) by `export_run`. Latency: one 224x224 image, median of 20 calls after 3 warm-up calls, in this
process: the studio's RunModel (its TFLite forward, numpy head), the SavedModel's `serve`, the TFLite
interpreter, ONNX Runtime (CPU). The web page: 10 copies of one PNG through its file input in Chromium, wall
time per image including the page's decoding and JavaScript resize.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.photos import emit
from core.runs.store import RunStore

REPEATS = 20


def _median_ms(call) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def _callers(fmt: str, path: Path, image: np.ndarray):
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
        return lambda: session.run(["probs"], {"image": image})
    from core.tf import tf

    if fmt == "savedmodel":
        model = tf.saved_model.load(str(path / "model"))
        return lambda: model.serve(tf.constant(image))
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path / "model.tflite"))
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]

    def call():
        interpreter.set_tensor(index, image)
        interpreter.invoke()
    return call


def _web_ms(page_file: Path, png: Path, copies: int = 10) -> float:
    from playwright.sync_api import sync_playwright

    from tests.helpers import CHROMIUM, FLAGS

    folder = Path(tempfile.mkdtemp(prefix="web-images-"))
    files = [folder / f"copy{n}.png" for n in range(copies)]
    for f in files:
        f.write_bytes(png.read_bytes())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.route(re.compile(r"^https?://"), lambda route: route.abort())
        page.goto(page_file.as_uri())
        page.wait_for_function("window.studioReady", timeout=120_000)
        page.set_input_files("#pick", [str(files[0])])  # warm-up
        page.wait_for_function("(window.classified || []).length === 1", timeout=60_000)
        start = time.perf_counter()
        page.set_input_files("#pick", [str(f) for f in files])
        page.wait_for_function(f"window.classified.length === {copies + 1}", timeout=120_000)
        seconds = time.perf_counter() - start
        browser.close()
    return round(1000 * seconds / copies, 1)


def _size_mb(folder: Path, fmt: str) -> float:
    target = {"savedmodel": folder / "model", "keras": folder / "model.keras", "tflite": folder / "model.tflite",
              "onnx": folder / "model.onnx", "web": folder / "classifier.html"}[fmt]
    files = [target] if target.is_file() else [f for f in target.rglob("*") if f.is_file()]
    return round(sum(f.stat().st_size for f in files) / 1e6, 1)


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="studio-exports-"))
    os.environ["STUDIO_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "core", "train", "--data", "digits"], env=os.environ,
                          capture_output=True, text=True, check=True)
    run_id = json.loads(done.stdout.strip().splitlines()[-1])["run_id"]
    from core.data.arrays import item_arrays
    from core.inference.export import export_run
    from core.inference.predict import run_model

    item = RunStore.default().load(run_id).split().val[0]
    uint8 = item_arrays([item], 224)
    image = uint8.astype(np.float32) / 255.0
    model = run_model(RunStore.default(), run_id)
    rows = {"studio (RunModel, TFLite forward)": {"ms": _median_ms(lambda: model.predict_arrays(uint8))}}
    for fmt in ("savedmodel", "keras", "tflite", "onnx", "web"):
        start = time.perf_counter()
        result = export_run(RunStore.default(), run_id, fmt, home / "exports" / fmt)
        row = {"mb": _size_mb(result.path, fmt), "export_s": round(time.perf_counter() - start, 1),
               "max_abs_diff": result.max_abs_diff}
        if fmt in ("savedmodel", "tflite", "onnx"):
            row["ms"] = _median_ms(_callers(fmt, result.path, image))
        if fmt == "web":
            row["ms"] = _web_ms(result.path / "classifier.html", Path(item.path))
        rows[fmt] = row
    emit({"benchmark": "exports", "run": run_id, **rows})


if __name__ == "__main__":
    main()
