"""Issue 28's whole-process measure: the default frozen run from the command line against make_image_classifier
(benchmarks/mic_baseline.py) on the same folder and backbone, taken in turn, wall time of each whole process
from its start. The folder: 500 digit images, 50 a class (PNG files written here). The studio starts from a cold
studio home each time, with the models already prepared (STUDIO_MODELS_DIR); the baseline loads `prepare`'s
TF Hub-format export.

    .venv/bin/python -m benchmarks.whole_process --pairs 5      # about 15 minutes on a 2-core CPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core import paths
from core.backbones import bundled

PER_CLASS, EPOCHS = 50, 20


def digits_folder(root: Path) -> Path:
    """500 of the demo's digit images, 50 a class, as PNG files in class folders."""
    from core.data.sources import demo_folder

    demo = demo_folder("digits")
    for label in sorted(p.name for p in demo.iterdir() if p.is_dir()):
        (root / label).mkdir(parents=True, exist_ok=True)
        for image in sorted((demo / label).iterdir())[:PER_CLASS]:
            (root / label / image.name).write_bytes(image.read_bytes())
    return root


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    bundled.prepare()
    work = Path(tempfile.mkdtemp(prefix="whole-process-"))
    folder = digits_folder(work / "digits")
    env = {**os.environ, "STUDIO_MODELS_DIR": str(paths.models_dir())}
    ratios = []
    for pair in range(args.pairs):
        home = work / f"home-{pair}"  # cold: no scan, array or feature cache
        studio, studio_out = timed([sys.executable, "-m", "core", "train", "--data", str(folder), "--frozen-blocks",
                                    "all", "--per-class", str(PER_CLASS), "--epochs", str(EPOCHS)],
                                   {**env, "STUDIO_HOME": str(home)})
        baseline, baseline_out = timed([sys.executable, "-m", "benchmarks.mic_baseline", str(folder),
                                        str(bundled.hub_path()), "--epochs", str(EPOCHS)], env)
        ratios.append(baseline / studio)
        print(json.dumps({"pair": pair + 1, "studio_seconds": round(studio, 2), "baseline_seconds": round(baseline, 2),
                          "ratio": round(baseline / studio, 2),
                          "studio_val_accuracy": json.loads(studio_out).get("val_accuracy"),
                          "baseline_val_accuracy": json.loads(baseline_out)["val_accuracy"]}), flush=True)
    print(json.dumps({"median_ratio": round(statistics.median(ratios), 2), "pairs": len(ratios)}))


if __name__ == "__main__":
    main()
