"""The run store: one folder per run under its root, every file written atomically.

runs/<id>/ config.json, dataset.json, split.json, status.json, history.csv, metrics.json,
predictions.csv, weights.npz (arrays only, loaded with allow_pickle=False) and, once
complete, manifest.json with the SHA-256 of every other file except status.json.
"""

from __future__ import annotations

import io
import secrets
import shutil
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import psutil

from core import paths
from core.data.sampling import Split
from core.errors import RunError
from core.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    csv_rows,
    csv_text,
    manifest_problems,
    read_json,
    sha256_file,
)
from core.model.metrics import Predictions
from core.training.config import TrainConfig


class RunState(StrEnum):
    """Where a run is; status.json stores the value. DAMAGED is never stored: it is found on reading."""
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DAMAGED = "damaged"

    @property
    def active(self) -> bool:
        """Waiting for or held by a worker."""
        return self in (RunState.QUEUED, RunState.RUNNING)

    @property
    def final(self) -> bool:
        return not self.active

    @staticmethod
    def of(status: dict) -> RunState:
        try:
            return RunState(status.get("state", RunState.FAILED))
        except ValueError:
            return RunState.FAILED

HISTORY_FIELDS = ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def pid_alive(pid: int | None) -> bool:
    """Whether process pid runs; a zombie (exited, not yet reaped) counts as dead. psutil works on every OS."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


@dataclass(frozen=True, kw_only=True)
class Run:
    id: str
    dir: Path
    config: TrainConfig
    status: dict
    damaged: tuple[str, ...] = ()

    @property
    def state(self) -> RunState:
        return RunState.DAMAGED if self.damaged else RunState.of(self.status)

    def metrics(self) -> dict:
        path = self.dir / "metrics.json"
        return read_json(path) if path.is_file() else {}

    def history(self) -> list[dict]:
        return read_history(self.dir)

    def dataset(self) -> dict:
        path = self.dir / "dataset.json"
        return read_json(path) if path.is_file() else {}

    def split(self) -> Split:
        data = read_json(self.dir / "split.json")
        return Split.from_json(data, data["root"])

    def predictions(self) -> dict[str, Predictions]:
        return read_predictions(self.dir)

    def weights(self) -> dict[str, np.ndarray]:
        with np.load(self.dir / "weights.npz", allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


# ---------- writing ----------

def write_history(folder: Path, history: list[dict]) -> None:
    rows = ([("" if row.get(k) is None else row[k]) for k in HISTORY_FIELDS] for row in history)
    atomic_write_text(folder / "history.csv", csv_text(HISTORY_FIELDS, rows))


def read_history(folder: Path) -> list[dict]:
    path = folder / "history.csv"
    if not path.is_file():
        return []
    header, *rows = csv_rows(path.read_text(encoding="utf-8"))
    return [{k: (v if k == "phase" else (int(v) if k == "epoch" else (float(v) if v != "" else None)))
             for k, v in zip(header, row, strict=False)} for row in rows]


def write_predictions(folder: Path, predictions: dict[str, Predictions]) -> None:
    classes = next(iter(predictions.values())).classes
    header = ["split", "image", "label", "predicted", "confidence", "loss"] + [f"p:{c}" for c in classes]
    rows = []
    for split_name, p in predictions.items():
        pred, losses = p.predicted, p.losses
        for i, name in enumerate(p.names):
            rows.append([split_name, name, classes[p.labels[i]], classes[pred[i]], f"{p.probs[i, pred[i]]:.6f}",
                         f"{losses[i]:.6f}"] + [f"{v:.6f}" for v in p.probs[i]])
    atomic_write_text(folder / "predictions.csv", csv_text(header, rows))


def read_predictions(folder: Path) -> dict[str, Predictions]:
    rows = csv_rows((folder / "predictions.csv").read_text(encoding="utf-8"))
    classes = tuple(c[2:] for c in rows[0][6:])
    index = {c: i for i, c in enumerate(classes)}
    out: dict[str, Predictions] = {}
    for split_name in ("train", "val", "test"):
        part = [r for r in rows[1:] if r[0] == split_name]
        probs = np.array([[float(v) for v in r[6:]] for r in part], dtype=np.float64).reshape(len(part), len(classes))
        labels = np.array([index[r[2]] for r in part], dtype=int)
        out[split_name] = Predictions(names=tuple(r[1] for r in part), labels=labels, probs=probs, classes=classes)
    return out


def write_weights(folder: Path, weights: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **weights)
    atomic_write_bytes(folder / "weights.npz", buf.getvalue())


def write_manifest(folder: Path) -> None:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name not in ("manifest.json", "status.json")
                   and not p.name.startswith("."))
    atomic_write_json(folder / "manifest.json", {p.name: sha256_file(p) for p in files})


# ---------- the store ----------

@dataclass(frozen=True, kw_only=True)
class RunStore:
    """One folder of runs. Everything that reads or writes runs is given one: the pages and the CLI make it at
    start-up (`default()`, or `--runs-dir`), workers and the dispatcher are told its root on their command
    line, and a cluster node trains into a scratch store of its own."""
    root: Path

    @staticmethod
    def default() -> RunStore:
        """STUDIO_RUNS_DIR, else STUDIO_HOME/runs."""
        return RunStore(root=paths.runs_dir())

    def folder(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or "\\" in run_id or run_id.startswith("."):
            raise RunError(f"{run_id!r} is not a run id.")
        return self.root / run_id

    def create(self, config: TrainConfig, *, run_id: str | None = None, owner: str | None = None,
               cluster: str = "") -> Run:
        """A queued run; `owner` names the app session that asked for it (None from the CLI); `cluster` the Ray
        address it trains on ("" for this machine's workers)."""
        run_id = run_id or new_run_id()
        folder = self.folder(run_id)
        folder.mkdir(parents=True, exist_ok=False)
        atomic_write_json(folder / "config.json", config.to_json())
        status = {"state": RunState.QUEUED, "created": time.time(), "updated": time.time(), "owner": owner,
                  "message": f"waiting for the cluster at {cluster}" if cluster else "waiting for the worker",
                  **({"cluster": cluster} if cluster else {})}
        atomic_write_json(folder / "status.json", status)
        return Run(id=run_id, dir=folder, config=config, status=status)

    def update(self, run_id: str, **fields) -> dict:
        """Merge fields into the run's status.json (atomically); the new status."""
        path = self.folder(run_id) / "status.json"
        status = read_json(path) if path.is_file() else {}
        status.update(fields)
        status["updated"] = time.time()
        atomic_write_json(path, status)
        return status

    def load(self, run_id: str, *, verify: bool = True) -> Run:
        """The run; verify=False skips hashing a completed run's files (for queue bookkeeping). A run whose
        worker died is marked failed here."""
        folder = self.folder(run_id)
        if not folder.is_dir():
            raise RunError(f"No run {run_id!r} in {self.root}.")
        try:
            config = TrainConfig.from_json(read_json(folder / "config.json"))
            status = read_json(folder / "status.json")
        except (OSError, ValueError, TypeError) as exc:
            return Run(id=run_id, dir=folder, config=TrainConfig(), status={"state": RunState.FAILED},
                       damaged=(f"config or status unreadable ({exc})",))
        damaged: tuple[str, ...] = ()
        state = RunState.of(status)
        if state == RunState.COMPLETED and verify:
            damaged = tuple(manifest_problems(folder))
        elif state.active and not pid_alive(status.get("pid")) and (state == RunState.RUNNING or status.get("pid")):
            status = self._mark_dead(run_id, status)
        return Run(id=run_id, dir=folder, config=config, status=status, damaged=damaged)

    def _mark_dead(self, run_id: str, status: dict) -> dict:
        done = len(read_history(self.folder(run_id)))
        who = "The studio's dispatcher for the cluster" if status.get("cluster") else "The worker process"
        message = (f"{who} stopped unexpectedly (killed or crashed) while {status.get('state')}; "
                   f"the history of {done} finished epoch(s) is kept.")
        return self.update(run_id, state=RunState.FAILED, message=message, pid=None)

    def runs(self, *, verify: bool = True) -> list[Run]:
        """Every run, newest first; damaged ones are included and marked."""
        if not self.root.is_dir():
            return []
        found = [self.load(p.name, verify=verify) for p in self.root.iterdir()
                 if p.is_dir() and not p.name.startswith(".")]
        return sorted(found, key=lambda r: r.status.get("created", 0), reverse=True)

    def delete(self, run_id: str) -> None:
        folder = self.folder(run_id)
        if not folder.is_dir():
            raise RunError(f"No run {run_id!r} to delete.")
        run = self.load(run_id)
        if run.state.active and pid_alive(run.status.get("pid")):
            raise RunError(f"Run {run_id} is {run.state}; cancel it before deleting it.")
        trash = folder.with_name(f".deleted-{run_id}")
        folder.rename(trash)  # one atomic step: the run disappears whole
        shutil.rmtree(trash, ignore_errors=True)
