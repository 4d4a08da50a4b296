"""Who trains a run: the local queue (worker processes on this machine) or a Ray cluster, behind one interface.

Pages, the CLI and sweeps ask current() for the executor and call submit(), ensure() and info(); cancel
(core.runs.jobs.cancel) and wait() work on any run, wherever it trains. Without STUDIO_RAY_ADDRESS or an
explicit address the local queue is used, and Ray is never imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from core.errors import RunError, StudioError
from core.runs import jobs
from core.runs.store import RunStore, pid_alive
from core.training.config import TrainConfig

ADDRESS_ENV = "STUDIO_RAY_ADDRESS"
NO_RAY = ("Runs are meant for the Ray cluster at {address} (STUDIO_RAY_ADDRESS), but Ray is not installed here: "
          "run `.venv/bin/pip install -r requirements-cluster.txt`, or unset STUDIO_RAY_ADDRESS to train on this "
          "machine.")


ExecutorKind = Literal["local", "ray"]


@dataclass(frozen=True, kw_only=True)
class ExecutorInfo:
    kind: ExecutorKind
    address: str  # "" for the local queue
    nodes: int
    cpus: float
    gpus: float
    problem: str = ""  # why the cluster could not be reached; the counts are then 0

    def sentence(self) -> str:
        if self.problem:
            return f"Ray cluster at {self.address}: {self.problem}"
        where = "this machine's worker queue (one run at a time)" if self.kind == "local" \
            else f"the Ray cluster at {self.address}"
        return (f"Runs train on {where}: {self.nodes} node(s), {self.cpus:g} CPU(s), "
                f"{self.gpus:g} GPU(s).")


class Executor(Protocol):
    kind: ExecutorKind

    def submit(self, config: TrainConfig, *, owner: str | None = None) -> str:
        """Queue a run; return its id."""

    def ensure(self) -> None:
        """Start whatever the queued runs wait for (workers, a dispatcher)."""

    def info(self) -> ExecutorInfo:
        """What the runs train on."""


class LocalQueue:
    kind: ExecutorKind = "local"

    def __init__(self, store: RunStore):
        self.store = store

    def submit(self, config: TrainConfig, *, owner: str | None = None) -> str:
        return jobs.submit(self.store, config, owner=owner)

    def ensure(self) -> None:
        jobs.ensure_workers(self.store)

    def info(self) -> ExecutorInfo:
        return ExecutorInfo(kind="local", address="", nodes=1, cpus=os.cpu_count() or 1, gpus=_local_gpus())


def _local_gpus() -> int:
    """NVIDIA GPUs the driver lists, counted without loading TensorFlow (the page asks on every rerun)."""
    folder = Path("/proc/driver/nvidia/gpus")
    return len(list(folder.iterdir())) if folder.is_dir() else 0


class ClusterQueue:
    """Runs queued for a Ray cluster are trained by the dispatcher (core.runs.dispatch), one Ray task each.
    Only info() loads Ray, when a page asks what the cluster holds."""
    kind: ExecutorKind = "ray"

    def __init__(self, store: RunStore, address: str):
        self.store, self.address = store, address

    def submit(self, config: TrainConfig, *, owner: str | None = None) -> str:
        config.validate()
        if not ray_installed():
            raise RunError(NO_RAY.format(address=self.address))
        run = self.store.create(config, owner=owner, cluster=self.address)
        self.ensure()
        return run.id

    def ensure(self) -> None:
        """Start the dispatcher when runs wait for this cluster and none serves it."""
        if ray_installed() and jobs.queued_runs(self.store, self.address) and not pid_alive(self._dispatcher_pid()):
            jobs.spawn(self.store, "dispatch", "--cluster", self.address, log="dispatch.log")

    def info(self) -> ExecutorInfo:
        if not ray_installed():
            return ExecutorInfo(
                kind=self.kind,
                address=self.address,
                nodes=0,
                cpus=0,
                gpus=0,
                problem=NO_RAY.format(address=self.address),
            )
        from core.runs.remote import cluster_resources, connect

        try:
            connect(self.address)
            nodes, cpus, gpus = cluster_resources()
        except StudioError as exc:
            return ExecutorInfo(kind=self.kind, address=self.address, nodes=0, cpus=0, gpus=0, problem=str(exc))
        return ExecutorInfo(kind=self.kind, address=self.address, nodes=nodes, cpus=cpus, gpus=gpus)

    def _dispatcher_pid(self) -> int | None:
        try:
            return int(dispatcher_file(self.store, self.address, "pid").read_text().strip())
        except (OSError, ValueError):
            return None


def ray_installed() -> bool:
    """Whether Ray can be imported here, found without importing it."""
    return importlib.util.find_spec("ray") is not None


def dispatcher_file(store: RunStore, address: str, suffix: str) -> Path:
    """runs/.dispatch/<address hash>.<suffix>: one dispatcher per cluster address and run store."""
    key = hashlib.sha256(address.encode()).hexdigest()[:12]
    return store.root / ".dispatch" / f"{key}.{suffix}"


def address(cluster: str | None = None) -> str:
    """The cluster to use: the one given, else STUDIO_RAY_ADDRESS, else "" (the local queue)."""
    return (cluster or os.environ.get(ADDRESS_ENV, "")).strip()


def current(store: RunStore, cluster: str | None = None) -> Executor:
    """The executor the runs of this store train on: the cluster given or in STUDIO_RAY_ADDRESS, else the
    local queue."""
    where = address(cluster)
    return ClusterQueue(store, where) if where else LocalQueue(store)


def ensure_all(store: RunStore) -> None:
    """Workers for this machine's queued runs and a dispatcher for each cluster that has queued runs."""
    jobs.ensure_workers(store)
    clusters = {r.status.get("cluster", "") for r in store.runs(verify=False) if r.state.active} - {""}
    for where in sorted(clusters):
        current(store, where).ensure()


def wait(store: RunStore, run_id: str, *, timeout: float | None = None, poll: float = 0.5,
         on_status: Callable[[dict], object] | None = None) -> dict:
    """jobs.wait for a run on any executor: a queued run gets whatever it waits for (workers, a dispatcher)."""
    return jobs.wait(store, run_id, timeout, poll, on_status, ensure=lambda: ensure_all(store))
