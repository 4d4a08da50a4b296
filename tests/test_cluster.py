"""Sweeps on a real Ray cluster: a head and a second node started on this machine's loopback address with
`ray start`, one CPU each (the ray_cluster fixture in conftest.py: once per session, stopped at its end).
No mocks: the studio's dispatcher process drives the cluster as it would a remote one (the images travel
through the object store)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.runs.store import RunStore
from tests.helpers import (
    NODE_TIMEOUT,
    PROJECT_DIR,
    alive_ray_nodes,
    free_port,
    make_color_folders,
    start_ray_node,
    stop_process_group,
    wait_for,
)


@pytest.fixture
def colors(tmp_path):
    return make_color_folders(tmp_path / "colors", per_class=8, size=24)


def run_sweep(address: str, base, **grid):
    from core.runs import executors, sweeps

    return sweeps.create_sweep(
        RunStore.default(), sweeps.SweepSpec(base=base, **grid), executor=executors.current(RunStore.default(), address)
    )


def watch(sweep_id: str, timeout: float = 300) -> None:
    """Poll the sweep as the Experiments page does until no run is queued or training."""
    from core.runs import executors, sweeps

    def settled():
        runs = [r for r in sweeps.load_sweep(RunStore.default(), sweep_id).runs() if r is not None]
        executors.ensure_all(RunStore.default())
        return not any(r.state.active for r in runs)

    assert wait_for(settled, timeout, poll=0.2), sweeps.load_sweep(RunStore.default(), sweep_id).progress()


def test_a_sweep_from_the_page_trains_on_both_nodes_and_every_run_arrives_whole(ray_cluster, colors, own_runs,
                                                                              monkeypatch):
    """STUDIO_RAY_ADDRESS set: the Experiments page names the cluster, and the sweep it starts trains there
    (the page does not know which executor trains)."""
    from core.fileio import read_json
    from core.runs import sweeps
    from core.runs.store import RunState
    from tests.helpers import open_page, text_of

    address, _ = ray_cluster
    monkeypatch.setenv("STUDIO_RAY_ADDRESS", address)
    at = open_page("experiments", dataset=str(colors), dataset_label="colours")
    assert f"Runs train on the Ray cluster at {address}: 2 node(s), 2 CPU(s), 0 GPU(s)." in text_of(at)
    at.multiselect[0].set_value([5, 8]).run()  # images per class
    at.multiselect[1].set_value(["all"]).run()  # frozen blocks
    at.multiselect[3].set_value(["dense", "nearest-mean"]).run()  # heads
    at.number_input[0].set_value(2).run()  # epochs
    assert "**4 runs**" in text_of(at) and "on the cluster's 2 CPU slots" in text_of(at)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    watch(at.session_state.sweep_id)

    runs = sweeps.load_sweep(RunStore.default(), at.session_state.sweep_id).runs()
    assert [r.state for r in runs] == [RunState.COMPLETED] * 4, [r.status.get("message") for r in runs]
    assert {r.status["node"] for r in runs} == alive_ray_nodes(), "each node of the cluster trained a run"
    for run in runs:
        assert run.damaged == () and run.status["attempts"] == 1 and run.status["cluster"] == address
        manifest = read_json(run.dir / "manifest.json")
        assert {"dataset.json", "split.json", "weights.npz", "predictions.csv", "metrics.json"} <= set(manifest)
        assert read_json(run.dir / "split.json")["root"] == str(colors), "the studio's paths, not a node's"
        assert run.metrics()["val_accuracy"] is not None


def test_cancel_reaches_the_task_and_a_dispatcher_that_dies_loses_nothing_finished(ray_cluster, colors, own_runs):
    """Cancel one run of a sweep on the cluster: it stops on its node, the other finishes. Resume: the
    cancelled point trains again; kill the dispatcher (the studio's side) while it does: that run fails
    with the reason, and the finished run is neither lost nor trained again."""
    from core.runs import executors, jobs, sweeps
    from core.runs.store import RunState, pid_alive
    from core.training.config import TrainConfig

    address, _ = ray_cluster
    base = TrainConfig(dataset=str(colors), per_class=6, epochs=300, val_fraction=0.3, test_fraction=0.0)
    sweep = run_sweep(address, base, per_class=(6,), augment=(True, False))  # augmented: each epoch a forward
    slow, other = sweeps.load_sweep(RunStore.default(), sweep.id).run_ids
    assert wait_for(lambda: training(slow), 180), (
        RunStore.default().load(slow).status
    )  # its progress reaches the studio
    assert jobs.cancel(RunStore.default(), slow) == "cancelling"
    watch(sweep.id)
    cancelled, finished = RunStore.default().load(slow), RunStore.default().load(other)
    assert cancelled.state == RunState.CANCELLED, cancelled.status
    assert cancelled.status["node"] and len(cancelled.history()) < 300, "it stopped mid-training, on its node"
    assert finished.state == RunState.COMPLETED, finished.status

    again = sweeps.resume(RunStore.default(), sweep.id, executor=executors.current(RunStore.default(), address)).run_ids
    assert again[1] == other and again[0] != slow, "only the cancelled point is queued again"
    assert wait_for(lambda: training(again[0]), 180), RunStore.default().load(again[0]).status
    dispatcher = RunStore.default().load(again[0], verify=False).status["pid"]
    os.kill(dispatcher, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(dispatcher), 10)
    lost = RunStore.default().load(again[0])
    assert lost.state == RunState.FAILED and "dispatcher" in lost.status["message"], lost.status
    assert RunStore.default().load(other).state == RunState.COMPLETED and RunStore.default().load(other).damaged == ()
    assert RunStore.default().load(other).metrics() == finished.metrics()


def training(run_id: str) -> bool:
    """The studio has been told, through the cluster, that the run is past its second epoch."""
    from core.runs.store import RunState, RunStore

    run = RunStore.default().load(run_id, verify=False)
    return run.state == RunState.RUNNING and (run.status.get("progress") or {}).get("epoch", 0) >= 2


def test_a_node_killed_mid_run_makes_the_run_retry_elsewhere(ray_cluster, colors, own_runs):
    from core.runs import sweeps
    from core.runs.store import RunState
    from core.runs.summary import where_trained
    from core.training.config import TrainConfig

    address, folder = ray_cluster
    # a third node whose runs stop half-saved (the fault point) until its raylet is killed
    third = start_ray_node(folder / "third", folder / "third.log", address=address, STUDIO_FAULT_PAUSE="saving")
    try:
        assert wait_for(lambda: len(alive_ray_nodes()) == 3, NODE_TIMEOUT), (folder / "third.log").read_text()[-2000:]
        base = TrainConfig(dataset=str(colors), epochs=2, val_fraction=0.3, test_fraction=0.0)
        sweep = run_sweep(address, base, per_class=(4, 5, 6))  # spread: one run on each node

        def paused():
            return [r for r in sweeps.load_sweep(RunStore.default(), sweep.id).runs()
                    if r is not None and "paused at saving" in r.status.get("message", "")]

        assert wait_for(paused, 180), [r.status for r in sweeps.load_sweep(RunStore.default(), sweep.id).runs()]
        stuck = paused()[0]
        os.kill(_raylet_of(third.pid), signal.SIGKILL)
        watch(sweep.id)
    finally:
        stop_process_group(third.pid, alive=lambda _: third.poll() is None)
        assert wait_for(lambda: len(alive_ray_nodes()) == 2, NODE_TIMEOUT), "the head saw the third node go"
    runs = sweeps.load_sweep(RunStore.default(), sweep.id).runs()
    assert [r.state for r in runs] == [RunState.COMPLETED] * 3, [r.status.get("message") for r in runs]
    retried = next(r for r in runs if r.id == stuck.id)
    assert retried.status["attempts"] == 2 and retried.status["nodes"][0] == stuck.status["node"] \
        and retried.status["node"] != stuck.status["node"], retried.status
    assert where_trained(retried.status).endswith(f"the Ray cluster at {address}, after 2 attempts (a node was lost)")
    assert all(r.damaged == () for r in runs), "no damaged run folder"



def _raylet_of(parent: int) -> int:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)
        except OSError:
            continue
        if fields[0].endswith("(raylet") and int(fields[1].split()[1]) == parent:
            return int(stat.parent.name)
    raise AssertionError(f"no raylet under process {parent}")


def test_an_address_where_nothing_answers_says_so_at_once():
    from core.runs import executors

    began = time.monotonic()
    info = executors.current(RunStore.default(), f"127.0.0.1:{free_port()}").info()
    assert time.monotonic() - began < 10
    assert "No Ray cluster answers" in info.problem and "ray start --head" in info.problem


def test_an_address_without_ray_installed_says_what_to_install(tmp_path, monkeypatch, own_runs):
    """A studio whose .venv lacks Ray (`make run` installs only requirements.txt) and STUDIO_RAY_ADDRESS set:
    the page's line and a submitted run say what to install, and nothing is queued."""
    import importlib.util

    from core.errors import RunError
    from core.runs import executors
    from core.runs.store import RunStore
    from core.training.config import TrainConfig

    finder = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else finder(name, *a))
    cluster = executors.current(RunStore.default(), "127.0.0.1:6379")
    assert "pip install -r requirements-cluster.txt" in cluster.info().problem
    with pytest.raises(RunError, match="Ray is not installed here"):
        cluster.submit(TrainConfig(dataset=str(tmp_path)))
    assert RunStore.default().runs() == []


def test_without_an_address_ray_is_never_imported(tmp_path):
    """The local executor describes itself, keeps its queue and takes a sweep's runs, and Ray stays out of the
    process. (That no other core module imports Ray is the import contract's job: tests/test_architecture.py.)"""
    script = """
import json, sys
import core.cli.commands, core.cli.parser, ui.resources
from core.runs import executors, sweeps
from core.training.config import TrainConfig
from core.runs.store import RunStore
executor = executors.current(RunStore.default())
executors.ensure_all(RunStore.default())
spec = sweeps.SweepSpec(base=TrainConfig(dataset=sys.argv[1]), per_class=(5,))
sweep = sweeps.create_sweep(RunStore.default(), spec, executor=executor)
print(json.dumps({"kind": executor.kind, "info": executor.info().sentence(), "ray": "ray" in sys.modules,
                  "queued": [r.state for r in sweep.runs()]}))
"""
    colors = make_color_folders(tmp_path / "colors", per_class=6)
    env = {k: v for k, v in os.environ.items() if k != "STUDIO_RAY_ADDRESS"} | {
        "STUDIO_HOME": str(tmp_path / "home"), "STUDIO_RUNS_DIR": str(tmp_path / "runs")}
    (tmp_path / "runs" / ".workers").mkdir(parents=True)
    (tmp_path / "runs" / ".workers" / str(os.getpid())).write_text("a live worker: none is started\n")
    out = subprocess.run([sys.executable, "-c", script, str(colors)], cwd=PROJECT_DIR, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kind"] == "local" and result["ray"] is False and result["queued"] == ["queued"]
    assert result["info"].startswith("Runs train on this machine's worker queue")


def test_the_forward_pass_sharded_over_the_cluster_fills_the_studios_store_and_survives_a_lost_node(
        ray_cluster, tmp_path, empty_feature_store, monkeypatch):
    """`core features --cluster`: shards of images go to the nodes, a third node stops mid-shard and is
    killed, its shard runs again elsewhere; every vector arrives once, equal to one computed here, and a
    second fill (or any later reader) computes nothing."""
    import threading

    from core.data.scan import scan_folder
    from core.features import blocks
    from core.runs import shards
    from tests.helpers import cli

    address, folder = ray_cluster
    data = make_color_folders(tmp_path / "sharded", per_class=6, size=24)
    items = scan_folder(data).items
    kept: list[str] = []
    keep = blocks.keep

    def counted(backbone, size, layout, shas, vectors):
        kept.extend(shas)
        keep(backbone, size, layout, shas, vectors)

    monkeypatch.setattr(blocks, "keep", counted)
    before = alive_ray_nodes()
    third = start_ray_node(folder / "third-shard", folder / "third-shard.log", address=address,
                           STUDIO_FAULT_PAUSE="shard")
    filled = []
    try:
        assert wait_for(lambda: len(alive_ray_nodes()) == 3, NODE_TIMEOUT), \
            (folder / "third-shard.log").read_text()[-2000:]
        lost = alive_ray_nodes() - before
        worker = threading.Thread(target=lambda: filled.append(shards.fill(items, "efficientnet_lite0", 224,
                                                                             address, shard=3)))
        worker.start()
        third_store = folder / "third-shard" / "cache" / "blocks"
        assert wait_for(lambda: any(third_store.rglob("*.npy")), 180), "the third node computed its shard"
        os.kill(_raylet_of(third.pid), signal.SIGKILL)
        worker.join(300)
    finally:
        stop_process_group(third.pid, alive=lambda _: third.poll() is None)
        assert wait_for(lambda: len(alive_ray_nodes()) == 2, NODE_TIMEOUT), "the head saw the third node go"
    assert filled, "the fill finished"
    done = filled[0]
    assert (done.images, done.computed, done.shards, len(done.nodes)) == (18, 18, 6, 6)
    assert set(done.nodes) == alive_ray_nodes() and not set(done.nodes) & lost, done.nodes
    assert sorted(kept) == sorted(i.sha256 for i in items), "every image's vectors arrived, each once"

    stored = blocks.block_vectors(items, "efficientnet_lite0", None)
    assert stored.computed == 0, "a later reader computes nothing"
    again = cli("features", "--data", str(data), "--cluster", address)
    assert again.returncode == 0 and json.loads(again.stdout.splitlines()[-1])["computed"] == 0
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "here"))  # a store of this process's own, empty
    here = blocks.block_vectors(items, "efficientnet_lite0", None)
    assert here.computed == 18 and np.abs(here.vectors - stored.vectors).max() < 1e-4, "the same vectors as here"

