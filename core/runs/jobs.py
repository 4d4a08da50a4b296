"""Training in worker processes: a queue on disk, one training at a time, cancel, crash detection.

submit() writes a queued run and makes sure a worker exists for it. Each worker process
(`python -m core worker`) waits for the queue lock, trains the oldest queued run, and
exits, so TensorFlow's memory goes back to the system after every run (core.runs.worker trains it). Workers register
a pid file; a run whose worker died is marked failed by RunStore.load, and queued runs
without enough live workers get new ones from ensure_workers().
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core import paths
from core.errors import RunError
from core.fileio import atomic_write_text, file_lock
from core.runs.store import RunState, RunStore, pid_alive
from core.runs.worker import execute
from core.training.config import TrainConfig


def _workers_dir(store: RunStore) -> Path:
    return store.root / ".workers"


def queue_lock(store: RunStore):
    """Held by whoever trains: one training at a time, and a waiting worker finds the queue as the holder left
    it (a run trained meanwhile is no longer queued)."""
    return file_lock(store.root / ".queue.lock")


def worker_states(store: RunStore) -> dict[int, str]:
    """pid -> what each live worker does: "starting" (spawned, not yet running Python), "waiting" (for the queue
    lock) or the id of the run it trains. Files of workers that are gone are removed."""
    folder = _workers_dir(store)
    if not folder.is_dir():
        return {}
    states = {}
    for f in folder.iterdir():
        pid = int(f.name) if f.name.isdigit() else 0
        if pid_alive(pid):
            try:
                states[pid] = f.read_text(errors="replace").strip()
            except OSError:  # the worker finished and removed its file meanwhile
                continue
        elif pid:
            f.unlink(missing_ok=True)
    return states


def live_workers(store: RunStore) -> list[int]:
    return list(worker_states(store))


def queued_runs(store: RunStore, cluster: str = ""):
    """Queued runs for this machine's workers (or, given an address, for that cluster), oldest first: the
    order they will train in. Called every second while a page polls, so completed runs are not re-hashed."""
    queued = [r for r in store.runs(verify=False) if r.state == RunState.QUEUED
              and r.status.get("cluster", "") == cluster]
    return sorted(queued, key=lambda r: r.status.get("created", 0))


def queue_position(store: RunStore, run_id: str) -> int | None:
    """1 for the next run to train, None if the run is not queued."""
    ids = [r.id for r in queued_runs(store)]
    return ids.index(run_id) + 1 if run_id in ids else None


_CHILDREN: list[subprocess.Popen] = []  # spawned by this process and not yet reaped
_REAPING = threading.Lock()


def spawn(store: RunStore, *command: str, log: str) -> subprocess.Popen:
    """`python -m core COMMAND... --runs-dir ROOT` in a session of its own (it outlives the page or CLI that
    started it), told the store it serves, its output appended to ROOT/LOG. A thread of this process reaps it
    when it exits, so a long-lived process (the app's server) keeps no defunct children."""
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / log, "ab") as out:
        child = subprocess.Popen([sys.executable, "-m", "core", *command, "--runs-dir", str(store.root)],
                                 cwd=paths.PROJECT_DIR, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    with _REAPING:
        _CHILDREN.append(child)
        if len(_CHILDREN) == 1:
            threading.Thread(target=_reap, name="reaper", daemon=True).start()
    return child


def _reap() -> None:
    """Wait for every spawned child in turn (poll, a second apart) until none is left."""
    while True:
        with _REAPING:
            _CHILDREN[:] = [child for child in _CHILDREN if child.poll() is None]
            if not _CHILDREN:
                return
        time.sleep(1.0)


def ensure_workers(store: RunStore) -> int:
    """Start workers until every queued run has one that is starting or waiting for it (never more: a worker
    counts from the moment it is spawned, and one process at a time counts and spawns); how many were started."""
    with file_lock(_workers_dir(store) / ".spawn.lock"):
        states = list(worker_states(store).values())
        idle = sum(state in ("starting", "waiting") for state in states)
        queued = {r.id for r in queued_runs(store)}
        missing = max(0, len(queued - set(states)) - idle)  # a worker that just took a run holds it while it is queued
        for _ in range(missing):
            _register(store, spawn(store, "worker", log="worker.log").pid)
    return missing


def _register(store: RunStore, pid: int) -> None:
    """The worker's file, "starting", unless the worker already wrote its own (it may be quicker than this)."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(_workers_dir(store) / str(pid), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, b"starting\n")
        os.close(fd)


def submit(store: RunStore, config: TrainConfig, owner: str | None = None) -> str:
    config.validate()
    run = store.create(config, owner=owner)
    ensure_workers(store)
    return run.id


def cancel(store: RunStore, run_id: str) -> str:
    """Cancel a queued run at once, a running one at its next batch; return the new state. The same for a run
    on a cluster: its dispatcher watches for the cancel file and passes it to the task."""
    folder = store.folder(run_id)
    run = store.load(run_id)
    if run.state.final:
        return run.state
    (folder / "cancel").write_text("requested\n")
    if run.state == RunState.QUEUED:
        store.update(run_id, state=RunState.CANCELLED, message="cancelled before it started")
        return RunState.CANCELLED
    return "cancelling"


# ---------- the worker process ----------

def worker_main(store: RunStore) -> int:
    """Entry of `python -m core worker`: train the oldest queued run, if any, then exit."""
    _workers_dir(store).mkdir(parents=True, exist_ok=True)
    me = _workers_dir(store) / str(os.getpid())
    atomic_write_text(me, "waiting\n")  # renamed into place: ensure_workers never reads it half-written
    try:
        with queue_lock(store):
            queue = queued_runs(store)
            if not queue:
                return 0
            atomic_write_text(me, queue[0].id + "\n")
            execute(store, queue[0].id)
            return 0
    finally:
        me.unlink(missing_ok=True)


def wait(store: RunStore, run_id: str, timeout: float | None = None, poll: float = 0.5, on_status=None, *,
         ensure: Callable[[], object] | None = None) -> dict:
    """Block until the run reaches a final state; return its status. ensure starts whatever a queued run
    waits for: this machine's workers by default (core.runs.executors.ensure_all covers a cluster's runs too)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = store.load(run_id)
        if on_status:
            on_status(run.status)
        if run.state.final:
            return run.status
        if run.state == RunState.QUEUED:
            (ensure or (lambda: ensure_workers(store)))()
        if deadline is not None and time.monotonic() > deadline:
            raise RunError(f"Run {run_id} did not finish within {timeout:.0f} s (state {run.state}).")
        time.sleep(poll)
