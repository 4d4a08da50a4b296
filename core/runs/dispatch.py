"""The dispatcher: the studio's one connection to a Ray cluster (`python -m core dispatch --cluster ADDRESS`).

It takes the queued runs meant for that cluster and, for each, draws the sample and split here (dataset.json
and split.json are written as for a local run), sends one Ray task, relays the progress the task posts into
status.json, passes a cancel on, and writes the finished run back into the runs folder (core.runs.arrival).

It runs apart from the app's server, like the local workers, so a server restart loses nothing in flight.
Runs it has taken carry its pid: if it dies they are marked failed, and resuming the sweep trains them
again. It exits once nothing is queued or in flight.
"""

from __future__ import annotations

import hashlib
import os
import time

import ray

from core.errors import StudioError
from core.fileio import file_lock
from core.runs import jobs, worker
from core.runs.arrival import arrive
from core.runs.executors import dispatcher_file
from core.runs.remote import MAX_RETRIES, connect, new_board, put_images, ships_images, train_on_node
from core.runs.store import Run, RunState, RunStore

POLL_S = 0.5
IDLE_EXIT_S = 5.0
RUN_CPUS = 1  # TensorFlow spreads one run over the node's cores; one run per CPU slot keeps memory bounded


def dispatch_main(store: RunStore, address: str) -> int:
    with file_lock(dispatcher_file(store, address, "lock"), wait=False) as held:
        if not held:
            return 0  # another dispatcher serves this cluster
        pid_file = dispatcher_file(store, address, "pid")
        pid_file.write_text(f"{os.getpid()}\n")
        try:
            _serve(store, address)
        finally:
            pid_file.unlink(missing_ok=True)
    return 0


def _serve(store: RunStore, address: str) -> None:
    try:
        connect(address)
    except StudioError as exc:
        for run in jobs.queued_runs(store, address):
            store.update(run.id, state=RunState.FAILED, message=str(exc), finished=time.time())
        return
    board = new_board()
    gpus = ray.cluster_resources().get("GPU", 0) > 0
    images: dict[str, list] = {}  # one object per dataset, put once
    flight = Flight(store, board)
    idle_since = time.monotonic()
    while True:
        queued = jobs.queued_runs(store, address)  # the runs folder is listed once a turn
        for run in queued:
            if run.id not in flight.refs:
                _send(store, run, board, images, gpus, flight)
        flight.relay()
        flight.pass_cancels()
        flight.collect()
        if flight.refs or queued:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_EXIT_S:
            return
        time.sleep(POLL_S)


def _send(store: RunStore, run: Run, board, images: dict, gpus: bool, flight: Flight) -> None:
    began = time.monotonic()
    store.update(run.id, pid=os.getpid(), message="drawing the sample and split")
    try:
        drawn = worker.write_data(run.dir, run.config, prime=False)
        shipped = None
        if ships_images():
            key = hashlib.sha256("".join(sorted(i.sha256 for i in drawn.dataset.items)).encode()).hexdigest()
            if key not in images:
                images[key] = put_images(drawn.dataset.items)
            shipped = images[key]
    except Exception as exc:
        worker.record_failure(store, run.id, exc)
        return
    split = {**drawn.split.to_json(), "root": drawn.dataset.root}
    options = {"num_cpus": RUN_CPUS, "num_gpus": 1 if gpus else 0, "max_retries": MAX_RETRIES,
               "retry_exceptions": False, "scheduling_strategy": "SPREAD"}  # spread: every node takes runs
    flight.refs[run.id] = train_on_node.options(**options).remote(run.id, run.config.to_json(), split, shipped,
                                                                   board)
    store.update(run.id, message="waiting for a node of the cluster",
                  dispatch_seconds=round(time.monotonic() - began, 3))  # the studio's own cost per run


def _progress_fields(status: dict) -> dict:
    """What a node's progress post may set in status.json: a message, the progress and when it started, each of
    its own type; the state stays running, whatever the post says."""
    message, progress, started = status.get("message"), status.get("progress"), status.get("started")
    return {"message": message[:500] if isinstance(message, str) else "",
            "progress": progress if isinstance(progress, dict) else {},
            "started": started if isinstance(started, (int, float)) else None}


class Flight:
    """The runs sent to the cluster and not yet back."""

    def __init__(self, store: RunStore, board):
        self.store, self.board = store, board
        self.refs: dict[str, ray.ObjectRef] = {}
        self.nodes: dict[str, list[str]] = {}  # per run, the node of each attempt
        self.told: set[str] = set()  # runs whose cancel was passed on

    def relay(self) -> None:
        """The newest status each task posted, into the run's status.json (while the run is not final)."""
        posts, starts = ray.get(self.board.take.remote())
        self.nodes.update(starts)
        for run_id, status in posts.items():
            if run_id not in self.refs or not isinstance(status, dict) or RunState.of(status).final \
                    or self.store.load(run_id, verify=False).state.final:
                continue  # a final state comes with the run's files (collect); a post that is not a status, never
            nodes = self.nodes.get(run_id, [])
            self.store.update(run_id, state=RunState.RUNNING, **_progress_fields(status),
                          node=nodes[-1] if nodes else None, nodes=nodes, attempts=len(nodes))

    def pass_cancels(self) -> None:
        for run_id, ref in list(self.refs.items()):
            run = self.store.load(run_id, verify=False)
            if run.state.final:  # cancelled before a node took it (or marked failed): drop the task
                ray.cancel(ref, force=True)
                del self.refs[run_id]
            elif (run.dir / "cancel").exists() and run_id not in self.told:
                self.board.cancel.remote(run_id)  # the task stops at its next batch, as a local run does
                self.told.add(run_id)

    def collect(self) -> None:
        if not self.refs:
            return
        ready, _ = ray.wait(list(self.refs.values()), num_returns=len(self.refs), timeout=0)
        for run_id in [r for r, ref in self.refs.items() if ref in ready]:
            ref = self.refs.pop(run_id)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                self._failed(run_id, exc)
                continue
            try:
                arrive(self.store, run_id, result, nodes=self.nodes.get(run_id, []))
            except Exception as exc:  # noqa: BLE001 - one run's arrival never stops the dispatcher for the others
                self._failed(run_id, exc)

    def _failed(self, run_id: str, exc: Exception) -> None:
        tries = len(self.nodes.get(run_id, [])) or 1
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self.store.update(run_id, state=RunState.FAILED, pid=None, finished=time.time(), progress={},
                      message=f"The cluster could not finish this run ({tries} attempt(s)): {reason}")
