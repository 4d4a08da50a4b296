"""A run trained on a cluster node comes back: its files are written into the run's folder with the same
atomic writes as a local run, checked against the manifest the node wrote, and only then is the run marked
completed. Until then its status says running, so the studio never shows a half-written run."""

from __future__ import annotations

import time

from core.fileio import atomic_write_bytes, manifest_problems
from core.runs.store import RunState, run_dir, update_status, write_manifest

KEPT_HERE = ("config.json", "status.json", "dataset.json", "split.json")  # the studio wrote these itself


def arrive(run_id: str, result: dict, *, nodes: list[str]) -> RunState:
    """Write result (a node's {"files", "status", "node"}) into the run's folder; return the run's state."""
    began = time.monotonic()
    folder = run_dir(run_id)
    files: dict[str, bytes] = result["files"]
    unsafe = [name for name in files if "/" in name or "\\" in name or name.startswith(".")]
    state = RunState.of(result["status"])
    message = result["status"].get("message", "")
    if unsafe:
        state, message = RunState.FAILED, f"The node sent files with unusable names: {', '.join(unsafe)}."
    else:
        for name in sorted(files, key=lambda n: n == "manifest.json"):  # the manifest last, as a local run
            if name not in KEPT_HERE:
                atomic_write_bytes(folder / name, files[name])
    if state == RunState.COMPLETED:
        problems = manifest_problems(folder)  # the node's manifest: its files and the config it trained
        if problems:
            (folder / "manifest.json").unlink(missing_ok=True)
            state, message = RunState.FAILED, (f"The run's files arrived damaged from node {result['node']}: "
                                               f"{'; '.join(problems)}. Resume the sweep to train it again.")
        else:
            write_manifest(folder)  # now with dataset.json and split.json too
    update_status(run_id, state=state, message=message, pid=None, finished=time.time(), progress={},
                  node=result["node"], nodes=nodes, attempts=len(nodes),
                  arrival_seconds=round(time.monotonic() - began, 3))
    return state
