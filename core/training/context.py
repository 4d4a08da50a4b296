"""What every stage of a training run shares: the config, the callbacks, the strategy and the timings."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

from core.errors import TrainingError
from core.training.config import TrainConfig

PROGRESS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class TrainProgress:
    """Where a training run is, for a progress bar."""

    phase: str  # decode | features | augment | head | fine-tune | fit | evaluate
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    metrics: dict = field(default_factory=dict)
    eta_seconds: float | None = None


class Cancelled(Exception):
    """Training stopped because the user asked."""


@dataclass
class TrainingContext:
    """What every stage shares: the config, the callbacks, the strategy and the stage timings."""
    config: TrainConfig
    progress: Callable[[TrainProgress], None] | None
    should_stop: Callable[[], bool] | None
    on_epoch: Callable[[list[dict]], None] | None
    strategy: object | None  # a tf.distribute.Strategy, or None for the default device
    timings: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def scope(self):  # a fresh context each time: a strategy's scope object is single-use
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def report(self, phase: str, **values) -> None:
        if self.progress:
            self.progress(TrainProgress(phase, **values))

    @contextlib.contextmanager
    def timed(self, stage: str):
        start = time.monotonic()
        yield
        self.timings[f"{stage}_seconds"] = time.monotonic() - start


def diverged(loss: float, epoch: int, batch: int, phase) -> TrainingError:
    """The error of a loss that stopped being a number: where, and the fix."""
    return TrainingError(f"The loss became {loss} in epoch {epoch}, batch {batch} ({phase.name} phase); training "
                         f"diverged. Lower the learning rate (now {phase.learning_rate:g}).")
