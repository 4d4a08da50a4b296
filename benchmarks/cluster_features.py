"""The forward pass sharded over a Ray cluster (issue 44): `core features` on one node, on two, and here.

    python -m benchmarks.cluster_features --data /tmp/scale/photos-2000

Each measurement is the whole `core features` process from an empty feature store (the converted models
shared): here on this machine's cores (TFLite), then `--cluster` on a local cluster of one node and of two
(started with `ray start`, each pinned to a core of its own with taskset, their own studio homes so nothing is
cached on a node). From the
one- and two-node times, Amdahl's law gives the part that does not shrink with nodes (scanning, shipping
images, keeping vectors on the studio's side) and projects the time on 10 nodes of the same speed. On this
2-core machine the studio's process shares the cores with the nodes, so the two-node figure is a floor on what
separate machines would give. Prints JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.scale import timed
from core import paths
from core.backbones import bundled
from tests.helpers import (  # the test suite's local cluster: the same `ray start` settings
    HEALTH_CHECKS,
    NODE_TIMEOUT,
    alive_ray_nodes,
    free_port,
    start_ray_node,
    stop_process_group,
    wait_for,
)


def _cluster(folder: Path, nodes: int):
    """(address, node processes) of a local cluster of `nodes` nodes with one CPU each."""
    from core.runs.remote import connect

    port = free_port()
    address = f"127.0.0.1:{port}"
    started = [start_ray_node(folder / "head", folder / "head.log", head_port=port, core=0, **HEALTH_CHECKS)]
    time.sleep(5)
    connect(address)
    for n in range(1, nodes):
        started.append(start_ray_node(folder / f"node{n}", folder / f"node{n}.log", address=address, core=n))
    assert wait_for(lambda: len(alive_ray_nodes()) == nodes, NODE_TIMEOUT), (folder / "head.log").read_text()[-2000:]
    return address, started


def _stop(started) -> None:
    import ray

    ray.shutdown()
    for proc in reversed(started):
        stop_process_group(proc.pid, alive=lambda _, p=proc: p.poll() is None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    bundled.prepare()
    images = sum(1 for p in args.data.rglob("*.jpg"))
    results = {}

    def measure(where: str, extra: list[str]) -> None:
        home = Path(tempfile.mkdtemp(prefix="features-home-"))
        env = {**os.environ, "STUDIO_MODELS_DIR": str(paths.models_dir()), "STUDIO_HOME": str(home)}
        result = timed(f"core features ({where})", ["features", "--data", str(args.data), *extra], env)
        shutil.rmtree(home, ignore_errors=True)
        results[where] = result["seconds"]
        print(json.dumps({"images": images, "where": where, **result, "last_line": result["last_line"][:200]}),
              flush=True)

    measure("this machine, 2 cores", [])
    for nodes in (1, 2):
        folder = Path(tempfile.mkdtemp(prefix="features-cluster-"))
        address, started = _cluster(folder, nodes)
        try:
            measure(f"{nodes} node(s)", ["--cluster", address])
        finally:
            _stop(started)
            shutil.rmtree(folder, ignore_errors=True)
    one, two = results["1 node(s)"], results["2 node(s)"]
    serial = max(0.0, min(1.0, 2 * two / one - 1))  # Amdahl: two = one * (serial + (1 - serial) / 2)
    print(json.dumps({"images": images, "speed_up_2_nodes": round(one / two, 2), "serial_fraction": round(serial, 3),
                      "projected_10_nodes_s": round(one * (serial + (1 - serial) / 10), 1),
                      "projected_speed_up_10_nodes": round(1 / (serial + (1 - serial) / 10), 2),
                      "vs_this_machine_2_nodes": round(results["this machine, 2 cores"] / two, 2)}), flush=True)


if __name__ == "__main__":
    main()
