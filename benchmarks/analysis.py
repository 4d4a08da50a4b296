"""Transfer analysis: its speed, memory, and whether its forecast and probe predict real runs.

    .venv/bin/python -m benchmarks.analysis            # about 5 minutes on a 2-core CPU

1. `core analyze --data digits --per-class 25` as its own process in a fresh studio home (the converted
   models copied, nothing cached): wall time the first time and the second time (features reused).
2. For seeds 0, 1, 2: the analysis of 25 images per class forecasts 50 training images per class; a real
   feature-extraction run (the dense head, the defaults) trains on 50 images per class of the same seed
   and is scored on every remaining digit (about 1,300), with the probe's last-block accuracy beside it
   and a real run on the analysed 25 per class.
3. `core analyze --per-class 100` (1,000 images at 224 px) in a fresh home: the process's peak memory.

One JSON line per measurement; BENCHMARKS.md holds a measured run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.photos import emit, fresh_home
from core import paths


def cli_analyze(env: dict, per_class: int, seed: int = 0) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core", "analyze", "--data", "digits", "--per-class", str(per_class),
                          "--seed", str(seed)], cwd=paths.PROJECT_DIR, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"core analyze failed: {out.stderr[-2000:]}")
    return time.perf_counter() - start, json.loads(out.stdout.strip().splitlines()[-1])


def speed(work: Path) -> None:
    env = fresh_home(work / "speed")
    for attempt in ("first", "second"):
        seconds, result = cli_analyze(env, 25)
        emit({"measure": "analyze digits 25/class", "run": attempt, "process_s": round(seconds, 1),
              "inside_s": result["seconds"], "engine": result["engine"], "computed": result["computed"]})


def real_run(seed: int, per_class: int) -> float:
    """Feature extraction with the default dense head on `per_class` digits per class, scored on the rest."""
    from core.data.sampling import Split, sample
    from core.data.sources import load_dataset
    from core.training.config import TrainConfig
    from core.training.trainer import train

    dataset = load_dataset("digits")
    chosen = sample(dataset, per_class=per_class, seed=seed).items
    taken = {i.relpath for i in chosen}
    rest = tuple(i for i in dataset.items if i.relpath not in taken)
    result = train(
        TrainConfig(per_class=per_class, seed=seed), Split(train=chosen, val=rest, test=(), classes=dataset.classes)
    )
    return result.metrics["val_accuracy"]


def forecast_against_runs(work: Path) -> None:
    import os

    env = fresh_home(work / "forecast")
    os.environ.update(env)
    for seed in (0, 1, 2):
        _, result = cli_analyze(env, 25, seed)
        predicted = next(f for f in result["forecast"] if f["per_class"] == 50)
        actual, same_size = real_run(seed, 50), real_run(seed, 25)
        probe = result["depth"][-1]["accuracy"]
        emit({"measure": "forecast vs run", "seed": seed, "forecast_50": predicted["accuracy"],
              "interval": [predicted["low"], predicted["high"]], "run_50_accuracy": round(actual, 4),
              "forecast_error_points": round(100 * (predicted["accuracy"] - actual), 1),
              "last_block_probe_25": round(probe, 4), "probe_error_points": round(100 * (probe - actual), 1),
              "run_25_accuracy": round(same_size, 4),
              "probe_vs_run_25_points": round(100 * (probe - same_size), 1)})


def memory(work: Path) -> None:
    env = fresh_home(work / "memory")
    seconds, result = cli_analyze(env, 100)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    emit({"measure": "analyze 1,000 images", "images": result["images"], "process_s": round(seconds, 1),
          "peak_mb": round(peak_mb)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("speed", "memory", "forecast"), help="one part only")
    only = parser.parse_args().only
    if not (paths.models_dir() / "tflite").is_dir():
        raise SystemExit("Prepare the bundled model first: make run, or .venv/bin/python -m core prepare")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="analysis-") as tmp:
        work = Path(tmp)
        if only in (None, "speed"):
            speed(work)
        if only in (None, "memory"):
            memory(work)  # before the in-process runs: RUSAGE_CHILDREN keeps the largest child's peak
        if only in (None, "forecast"):
            forecast_against_runs(work)
    emit({"total_seconds": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    main()
