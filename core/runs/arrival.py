"""A run trained on a cluster node comes back: its files are written into the run's folder with the same
atomic writes as a local run, checked against the manifest the node wrote, and only then is the run marked
completed. Until then its status says running, so the studio never shows a half-written run.

A node's result is data from another machine: it is checked before anything is written. A node can send only
the run's result files (RESULT_FILES) and a final state of its own run; anything else fails that run with a
sentence, and the dispatcher goes on with the others."""

from __future__ import annotations

import time

from core.fileio import atomic_write_bytes, manifest_problems
from core.runs.store import RunState, RunStore, write_manifest

# What a finished run writes and a node may send back; the studio writes config, dataset, split and status
# itself, and the control files (cancel, lock, worker.log) belong to this machine.
RESULT_FILES = frozenset({"history.csv", "metrics.json", "predictions.csv", "weights.npz", "error.log",
                          "manifest.json"})
KEPT_HERE = frozenset({"config.json", "dataset.json", "split.json"})  # the node's copies are checked, not kept
NODE_STATES = (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED)  # a task ends in one of these


class MalformedResult(ValueError):
    """A node's result that the studio will not write: the message says what was wrong."""


def checked_result(result: object) -> tuple[dict[str, bytes], RunState, str, str]:
    """(files to write, final state, message, node) of a node's result; MalformedResult naming the problem."""
    if not isinstance(result, dict):
        raise MalformedResult(f"the node sent {type(result).__name__}, not a run's result")
    files, status, node = result.get("files"), result.get("status"), result.get("node", "")
    if not isinstance(files, dict) or not isinstance(status, dict) or not isinstance(node, str):
        raise MalformedResult("the node's result lacks its files, its status or its node")
    bad = [repr(name) for name, data in files.items()
           if not isinstance(name, str) or name not in RESULT_FILES | KEPT_HERE or not isinstance(data, bytes)]
    if bad:
        raise MalformedResult(f"the node sent files a run does not write back: {', '.join(sorted(bad)[:5])}")
    state = status.get("state")
    if state not in NODE_STATES:
        raise MalformedResult(f"the node reported the state {str(state)[:40]!r}, not one a finished task has")
    message = status.get("message", "")
    return ({n: d for n, d in files.items() if n in RESULT_FILES}, RunState(state),
            message if isinstance(message, str) else "", node[:200])


def arrive(store: RunStore, run_id: str, result: object, *, nodes: list[str]) -> RunState:
    """Write result (a node's {"files", "status", "node"}) into the run's folder; return the run's state."""
    began = time.monotonic()
    folder = store.folder(run_id)
    try:
        files, state, message, node = checked_result(result)
    except MalformedResult as exc:
        files, state, node = {}, RunState.FAILED, nodes[-1] if nodes else ""
        message = f"The cluster's result for this run was refused: {exc}. Resume the sweep to train it again."
    nodes = nodes or [node]
    for name in sorted(files, key=lambda n: n == "manifest.json"):  # the manifest last, as a local run
        atomic_write_bytes(folder / name, files[name])
    if state == RunState.COMPLETED:
        problems = manifest_problems(folder)  # the node's manifest: its files and the config it trained
        if problems:
            (folder / "manifest.json").unlink(missing_ok=True)
            state, message = RunState.FAILED, (f"The run's files arrived damaged from node {node}: "
                                               f"{'; '.join(problems)}. Resume the sweep to train it again.")
        else:
            write_manifest(folder)  # now with dataset.json and split.json too
    store.update(run_id, state=state, message=message, pid=None, finished=time.time(), progress={},
                  node=node, nodes=nodes, attempts=len(nodes), arrival_seconds=round(time.monotonic() - began, 3))
    return state
