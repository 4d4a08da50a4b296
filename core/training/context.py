"""What every stage of a training run shares: the config, the callbacks, the strategy and the timings."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import TrainingError
from core.training.config import TrainConfig
from core.training.plan import PhaseName

PROGRESS_INTERVAL_S = 0.5
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


Stage = Literal["load", "convert", "decode", "features", "augment", "evaluate"]


@dataclass(frozen=True, kw_only=True)
class TrainProgress:
    """Where a training run is, for a progress bar."""

    phase: Stage | PhaseName  # a stage before or after training, or the training phase
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    metrics: dict = field(default_factory=dict)
    eta_seconds: float | None = None


class Cancelled(Exception):
    """Training stopped because the user asked."""


@dataclass(kw_only=True)
class TrainingContext:
    """What every stage shares: the config, the callbacks, the strategy and the stage timings."""
    config: TrainConfig
    progress: Callable[[TrainProgress], None] | None
    should_stop: Callable[[], bool] | None
    on_epoch: Callable[[list[dict]], None] | None
    strategy: Any  # a tf.distribute.Strategy, or None for the default device
    timings: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def scope(self):  # a fresh context each time: a strategy's scope object is single-use
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def report(self, phase: Stage | PhaseName, **values) -> None:
        if self.progress:
            self.progress(TrainProgress(phase=phase, **values))

    def add_epoch(self, phase, epoch: int, seconds: float, metrics: dict) -> None:
        """One history row (the columns the Results page plots, None where a metric was not measured)."""
        row = {"epoch": epoch, "phase": phase.name, "learning_rate": phase.learning_rate, "seconds": seconds}
        for key in HISTORY_METRICS:
            row[key] = float(metrics[key]) if metrics.get(key) is not None else None
        self.history.append(row)
        if self.on_epoch:
            self.on_epoch(list(self.history))

    @contextlib.contextmanager
    def timed(self, stage: str):
        start = time.monotonic()
        yield
        self.timings[f"{stage}_seconds"] = time.monotonic() - start


def diverged(loss: float, epoch: int, batch: int, phase) -> TrainingError:
    """The error of a loss that stopped being a number: where, and the fix."""
    return TrainingError(f"The loss became {loss} in epoch {epoch}, batch {batch} ({phase.name} phase); training "
                         f"diverged. Lower the learning rate (now {phase.learning_rate:g}).")


class BatchWatch:
    """What a training loop does after each batch, Keras' or numpy's: stop on a loss that is not a number,
    report progress at most every PROGRESS_INTERVAL_S (and at an epoch's last batch) with the time left at the
    phase's pace so far, and say whether cancel was asked for."""

    def __init__(self, ctx: TrainingContext, phase, *, first_epoch: int, total_epochs: int):
        self.ctx, self.phase, self.first_epoch, self.total_epochs = ctx, phase, first_epoch, total_epochs
        self._started, self._last = time.monotonic(), 0.0

    def after_batch(self, epoch_index: int, batch: int, batches: int, metrics: dict) -> bool:
        """epoch_index counts from 0 within the phase, batch from 0 within the epoch; True to stop (cancel)."""
        loss = metrics.get("loss")
        epoch = self.first_epoch + epoch_index
        if loss is not None and not math.isfinite(loss):
            raise diverged(loss, epoch, batch + 1, self.phase)
        now = time.monotonic()
        if self.ctx.progress and (now - self._last >= PROGRESS_INTERVAL_S or batch + 1 == batches):
            self._last = now
            done, total = epoch_index * batches + batch + 1, self.phase.epochs * batches
            self.ctx.progress(
                TrainProgress(
                    phase=self.phase.name,
                    epoch=epoch,
                    epochs=self.total_epochs,
                    batch=batch + 1,
                    batches=batches,
                    metrics={k: float(v) for k, v in metrics.items()},
                    eta_seconds=(now - self._started) / done * (total - done),
                )
            )
        return bool(self.ctx.should_stop and self.ctx.should_stop())
