"""Sweeps on a Ray cluster (issue 34): one 12-run sweep from the command line, whole process, on this
machine's worker queue and then on a two-node Ray cluster started here (one CPU a node, loopback address).

    .venv/bin/python -m benchmarks.cluster      # about 15 minutes on a 2-core CPU

The sweep: the digits demo, 3 sizes (10, 20, 50 a class) x 2 depths (every block frozen; 15 of Lite0's 18
frozen, 3 fine-tuned) x 2 seeds, 5 epochs. Each side starts from a cold studio home (the models prepared in a
shared STUDIO_MODELS_DIR, made first if missing); the cluster's nodes start from cold homes too (their first
run fetches the images). Overhead per run is what the executor adds to the runs' own training time:
(wall time x parallel slots - the runs' seconds) / runs. The dispatcher's own work per run (drawing the sample
and split, sending) and the writing back of each run are read from the runs' status.json.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.photos import emit
from core.fileio import read_json

SWEEP = ["--data", "digits", "--sizes", "10", "20", "50", "--frozen", "all", "15", "--seeds", "0", "1",
         "--epochs", "5"]
RAY = Path(sys.executable).with_name("ray")


def sweep(home: Path, env: dict, cluster: str = "") -> dict:
    """`core sweep` as a user starts it; wall time, and what its runs recorded."""
    env = {**env, "STUDIO_HOME": str(home)}
    began = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "core", "sweep", *SWEEP, *(["--cluster", cluster] * bool(cluster))],
                         env=env, capture_output=True, text=True, check=True)
    wall = time.monotonic() - began
    runs = []
    for run_id in json.loads(out.stdout.strip().splitlines()[-1])["runs"]:
        folder = home / "runs" / run_id
        runs.append(read_json(folder / "status.json") | {"metrics": read_json(folder / "metrics.json"),
                                                         "bytes": sum(f.stat().st_size for f in folder.iterdir())})
    assert all(r["state"] == "completed" for r in runs), [r.get("message") for r in runs]
    return {"wall": wall, "runs": runs}


def summary(name: str, result: dict, slots: int) -> dict:
    seconds = [r["metrics"]["seconds"] for r in result["runs"]]
    row = {"executor": name, "runs": len(seconds), "wall_s": round(result["wall"], 1),
           "runs_seconds_sum": round(sum(seconds), 1), "slots": slots,
           "overhead_per_run_s": round((result["wall"] * slots - sum(seconds)) / len(seconds), 2),
           "peak_rss_mb_of_a_run": max(r["metrics"].get("peak_rss_mb", 0) for r in result["runs"]),
           "run_folder_mb_median": round(statistics.median(r["bytes"] for r in result["runs"]) / 2**20, 2)}
    if name == "ray":
        row |= {"nodes_used": len({r["node"] for r in result["runs"]}),
                "dispatch_s_median": statistics.median(r["dispatch_seconds"] for r in result["runs"]),
                "arrival_s_median": statistics.median(r["arrival_seconds"] for r in result["runs"]),
                "attempts": sum(r["attempts"] for r in result["runs"])}
    return emit(row)


def start_cluster(root: Path, env: dict) -> tuple[str, list[subprocess.Popen]]:
    port = 46000 + os.getpid() % 1000
    common = ["--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    nodes = []
    for name, where in (("head", ["--head", "--port", str(port), "--include-dashboard", "false"]),
                        ("second", ["--address", f"127.0.0.1:{port}"])):
        (root / name).mkdir()
        nodes.append(subprocess.Popen([str(RAY), "start", *where, *common], start_new_session=True,
                                      env={**env, "STUDIO_HOME": str(root / name), "RAY_USAGE_STATS_ENABLED": "0"},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(8)  # the head must answer before the second node joins
    return f"127.0.0.1:{port}", nodes


def main() -> None:
    from core import paths
    from core.backbones import bundled

    bundled.prepare()
    env = {**os.environ, "STUDIO_MODELS_DIR": str(paths.models_dir())}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        local = summary("local queue", sweep(root / "local", env), slots=1)
        began = time.monotonic()
        address, nodes = start_cluster(root, env)
        emit({"cluster_start_s": round(time.monotonic() - began, 1), "nodes": 2})
        try:
            ray = summary("ray", sweep(root / "ray", env, address), slots=2)
        finally:
            for node in reversed(nodes):
                node.send_signal(signal.SIGTERM)
                node.wait(60)
        emit({"wall_ratio_ray_over_local": round(ray["wall_s"] / local["wall_s"], 2)})


if __name__ == "__main__":
    main()
