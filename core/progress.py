"""The progress contract every long step of the core reports through.

A step reports `progress(stage, done, total)`: which stage it is in ("decoding", "features", ...), how many of
that stage's units are done and how many there are. A part that counts one thing only takes a `Counted`
callback, (done, total); `staged` turns a Progress into one for a named stage. Training reports richer
TrainProgress records (core.training.context) to its own callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Counted = Callable[[int, int], None]  # (done, total)


class Progress(Protocol):
    def __call__(self, stage: str, done: int, total: int, /) -> None: ...


def staged(progress: Progress | None, stage: str) -> Counted | None:
    """progress narrowed to one stage: a (done, total) callback, or None when there is no progress to report."""
    if progress is None:
        return None

    def counted(done: int, total: int) -> None:
        progress(stage, done, total)
    return counted
