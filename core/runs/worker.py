"""Training one run in this process, as a worker does (core.runs.jobs.worker_main) or a cluster node
(core.runs.remote): draw the data, train, and write every file into the run's folder, the manifest last; the
run's status says where it is all along, and a failure is recorded with its sentence (and, for anything
unexpected, the traceback in error.log).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import psutil

from core import rates
from core.data.sampling import Split
from core.errors import StudioError
from core.fileio import atomic_write_json
from core.runs.store import RunState, RunStore, write_history, write_manifest, write_predictions, write_weights
from core.training.config import TrainConfig
from core.training.plan import nominal_seconds

STATUS_INTERVAL_S = 0.5


def execute(store: RunStore, run_id: str, *, data: Callable[[], Split] | None = None) -> None:
    """Train one run in this process, writing everything into its folder. data gives the run's split when it
    was drawn elsewhere (a cluster node gets it from the studio); by default it is drawn here, with
    dataset.json and split.json written."""
    from core.training.context import Cancelled
    from core.training.devices import configure_devices
    from core.training.trainer import train

    folder = store.folder(run_id)
    config = store.load(run_id).config
    started = time.time()
    store.update(run_id, state=RunState.RUNNING, pid=os.getpid(), started=started, message="loading data",
                  progress={"phase": "decode"})
    try:
        devices = configure_devices()
        scan_start = time.monotonic()
        parts = data() if data else write_data(folder, config).split
        scan_seconds = time.monotonic() - scan_start
        result = train(config, parts, progress=_status_writer(store, run_id), should_stop=(folder / "cancel").exists,
                       on_epoch=lambda history: write_history(folder, history))
        store.update(run_id, message="saving", progress={"phase": "saving"})
        result.timings["data_seconds"] = scan_seconds  # scan (and import), sample, split
        _write_result(store, run_id, result, time.time() - started, f"GPU ({len(devices)})" if devices else "CPU")
        store.update(run_id, state=RunState.COMPLETED, message="done", pid=None, finished=time.time(), progress={})
        images = len(parts.train) + len(parts.val) + len(parts.test)
        rates.record("run", seconds=time.time() - started, units=nominal_seconds(config, images))
    except Cancelled as exc:
        store.update(run_id, state=RunState.CANCELLED, message=str(exc), pid=None, finished=time.time())
    except Exception as exc:
        record_failure(store, run_id, exc)


def record_failure(store: RunStore, run_id: str, exc: Exception) -> None:
    """A failed run's status: the sentence of a StudioError; for anything unexpected, the traceback in
    error.log and a sentence for the user."""
    if not isinstance(exc, StudioError):
        (store.folder(run_id) / "error.log").write_text(traceback.format_exc())
    message = str(exc) if isinstance(exc, StudioError) else \
        f"Unexpected error: {type(exc).__name__}: {exc} (details in error.log)"
    store.update(run_id, state=RunState.FAILED, message=message, pid=None, finished=time.time())


def _status_writer(store: RunStore, run_id: str):
    """A progress callback that writes the newest progress into status.json, at most every
    STATUS_INTERVAL_S (the start of the features and evaluate stages always)."""
    last = [0.0]

    def progress(p):
        now = time.monotonic()
        if now - last[0] < STATUS_INTERVAL_S and p.phase not in ("features", "evaluate"):
            return
        last[0] = now
        store.update(run_id, message=p.phase, progress={"phase": p.phase, "epoch": p.epoch, "epochs": p.epochs,
                                                          "batch": p.batch, "batches": p.batches,
                                                          "metrics": p.metrics, "eta_seconds": p.eta_seconds})
    return progress


def write_data(folder: Path, config: TrainConfig, *, prime: bool = True):
    """Scan, sample and split the data; write dataset.json (with every skipped file, the corrections applied
    and the leak check) and split.json; return the drawn RunData. With prime, the scan keeps each image's
    array at the backbone's input size, so the trainer here decodes nothing (a cluster node decodes its own)."""
    from core.backbones import get_spec
    from core.training.split import sample_split

    size = config.image_size or get_spec(config.backbone).input_size
    drawn = sample_split(config, prime_size=size if prime else None)
    dataset, chosen, parts = drawn.dataset, drawn.sample, drawn.split
    atomic_write_json(folder / "dataset.json", {
        **dataset.summary(), "leak_check": drawn.leak_check, "sample": chosen.describe(), "sample_share": chosen.share,
        "sample_size": len(chosen.items), "sample_per_class": chosen.per_class,
        "split_sizes": {"train": len(parts.train), "val": len(parts.val), "test": len(parts.test)}})
    atomic_write_json(folder / "split.json", {**parts.to_json(), "root": dataset.root})
    return drawn


def _write_result(store: RunStore, run_id: str, result, seconds: float, device: str) -> None:
    """Every file of a finished run, the manifest last (it marks the run whole)."""
    folder = store.folder(run_id)
    write_history(folder, result.history)
    write_predictions(folder, result.predictions)
    _fault_point(store, "saving", run_id)
    write_weights(folder, result.weights)
    atomic_write_json(folder / "metrics.json", {
        **result.metrics, "seconds": seconds, "timings": result.timings, "cached_features": result.cached,
        "plan": result.plan.to_json(), "trainable_params": result.trainable_params,
        "frozen_params": result.frozen_params, "device": device,
        "peak_rss_mb": peak_rss_mb()})
    write_manifest(folder)


def peak_rss_mb() -> int:
    """This process's peak resident memory in MB. ru_maxrss is KiB on Linux but bytes on macOS, and Windows has
    no resource module (psutil's peak_wset answers there)."""
    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)
    if peak is not None:
        return round(peak / 2**20)
    import resource  # POSIX only
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(maxrss / (2**20 if sys.platform == "darwin" else 2**10))


def _fault_point(store: RunStore, name: str, run_id: str) -> None:
    """Fault injection for the reliability tests: with STUDIO_FAULT_PAUSE=<name> the worker stops here
    (half its files written) until it is killed. Unset in normal use, so this does nothing."""
    if os.environ.get("STUDIO_FAULT_PAUSE") == name:
        store.update(run_id, message=f"paused at {name} (fault injection)")
        while True:
            time.sleep(1)
