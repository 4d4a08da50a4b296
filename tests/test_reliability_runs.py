"""Killed work: SIGKILL of real worker processes during training and during saving. Earlier runs
stay intact, every interrupted run shows as failed, and the queue goes on.

The round count is STUDIO_KILL_ROUNDS per phase (2 in CI; RELIABILITY.md reports the full 20)."""

import os
import signal

from core.fileio import sha256_file
from core.runs import jobs
from core.runs.store import RunStore
from core.training.config import TrainConfig
from tests.helpers import train_in_process, wait_for

KILL_ROUNDS = int(os.environ.get("STUDIO_KILL_ROUNDS", "2"))


def pid_when(run_id: str, ready, timeout: float = 300) -> int:
    """The worker pid once the run's status satisfies ready(status)."""
    found = {}

    def check():
        status = RunStore.default().load(run_id, verify=False).status
        if status.get("state") in ("completed", "failed", "cancelled"):
            raise AssertionError(f"{run_id} ended before it could be killed: {status}")
        if status.get("state") == "running" and status.get("pid") and ready(status):
            found["pid"] = status["pid"]
            return True
        return False

    assert wait_for(check, timeout=timeout, poll=0.1), f"{run_id} never reached the kill point"
    return found["pid"]


def in_training(status) -> bool:
    """Training, with at least one epoch finished (so there is a history to keep)."""
    p = status.get("progress") or {}
    return p.get("phase") in ("head", "fine-tune") and (p.get("batch") or 0) >= 1 and (p.get("epoch") or 0) >= 2


def paused_saving(status) -> bool:
    return "paused at saving" in status.get("message", "")


def kill_and_check(run_id: str, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: RunStore.default().load(run_id, verify=False).state == "failed", timeout=30)
    run = RunStore.default().load(run_id)
    assert "stopped unexpectedly" in run.status["message"]
    assert not (run.dir / "manifest.json").exists()  # never presented as a complete run


def test_sigkill_during_training_and_saving_damages_nothing(own_runs, color_folder, monkeypatch):
    base = TrainConfig(dataset=str(color_folder), per_class=6, epochs=2, seed=0)
    earlier = train_in_process(base)
    assert RunStore.default().load(earlier).state == "completed", RunStore.default().load(earlier).status
    before = {p.name: sha256_file(p) for p in RunStore.default().load(earlier).dir.iterdir() if p.is_file()}

    busy = base.with_(epochs=400, frozen_blocks=16, image_size=64)  # uncached fine-tuning: long enough to hit
    for i in range(KILL_ROUNDS):
        run_id = jobs.submit(RunStore.default(), busy.with_(seed=i))
        kill_and_check(run_id, pid_when(run_id, in_training))
        history = (
            RunStore.default().load(run_id).history()
        )  # the history so far stays readable: whole rows, epochs in order
        assert len(history) >= 1 and [h["epoch"] for h in history] == list(range(1, len(history) + 1))
        assert all(h["phase"] in ("head", "fine-tune") and h["loss"] is not None for h in history)

    monkeypatch.setenv("STUDIO_FAULT_PAUSE", "saving")  # workers started from now on stop half-saved
    for i in range(KILL_ROUNDS):
        run_id = jobs.submit(RunStore.default(), base.with_(seed=100 + i))
        pid = pid_when(run_id, paused_saving)
        assert (RunStore.default().load(run_id).dir / "predictions.csv").exists()  # really half-way through saving
        if i == KILL_ROUNDS - 1:  # the last one has a run queued behind it, from a normal worker
            monkeypatch.delenv("STUDIO_FAULT_PAUSE")
            queued = jobs.submit(RunStore.default(), base.with_(seed=999))
            assert jobs.queue_position(RunStore.default(), queued) == 1
        kill_and_check(run_id, pid)

    assert jobs.wait(RunStore.default(), queued, timeout=300)["state"] == "completed"  # the queue went on
    after = {p.name: sha256_file(p) for p in RunStore.default().load(earlier).dir.iterdir() if p.is_file()}
    assert (
        after == before
        and RunStore.default().load(earlier).state == "completed"
        and not RunStore.default().load(earlier).damaged
    )
    states = [r.state for r in RunStore.default().runs()]
    assert states.count("failed") == 2 * KILL_ROUNDS and states.count("completed") == 2
    assert wait_for(lambda: not jobs.live_workers(RunStore.default()), timeout=30)  # every worker exited
