"""Image work on every core. Pillow releases the GIL while it decodes and resamples, so threads
scale on a multi-core CPU without the cost of processes (BENCHMARKS.md has the measurement)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
PROGRESS_EVERY = 16


def workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def parallel_map(function: Callable[[T], R], items: Sequence[T],
                 progress: Callable[[int, int], None] | None = None) -> Iterator[R]:
    """function(item) for every item on a thread pool, yielded in the items' order; progress(done, total)
    every PROGRESS_EVERY items and at the end."""
    with ThreadPoolExecutor(workers(), thread_name_prefix="images") as pool:
        for done, result in enumerate(pool.map(function, items), 1):
            if progress is not None and (done == len(items) or done % PROGRESS_EVERY == 0):
                progress(done, len(items))
            yield result
