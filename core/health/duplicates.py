"""Near duplicates: resized, re-encoded or lightly cropped copies of one photo, within and across classes.

Two images are near duplicates when their grey 16x16 thumbnails correlate at NEAR or more, or their
feature vectors (the backbone's last block) have cosine NEAR or more, and neither signal is below
FLOOR. Thumbnails catch re-encodes and resizes; features catch crops. Measured on faces with one
planted copy per original (BENCHMARKS.md, "Trust"): recall 0.98 with 1.1 reported pairs per planted pair.

On images so small or so alike that a typical image already has a neighbour nearly that close (8x8
handwritten digits: the median image's nearest neighbour is at 0.944 in a sample of 20 per class and
0.964 in the whole set; faces 0.85-0.89), no threshold separates copies from neighbours: such a set
is reported as "crowded" and no pairs are claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.sampling import connected
from core.model.vectors import unit_rows

NEAR = 0.95
FLOOR = 0.8
CROWDED = 0.93  # crowded: the median image's nearest neighbour is at least this similar
CHUNK = 1024


@dataclass(frozen=True)
class NearDuplicates:
    groups: tuple[tuple[int, ...], ...]  # indices into the items, each group sorted, largest group first
    pairs: int  # pairs above the thresholds
    crowded: bool  # too many images have a close neighbour to call any of them copies


def similar_pairs(thumbs: np.ndarray, vectors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(i, j) index arrays of every pair i < j that passes, and the median image's nearest-neighbour
    similarity. Rows in chunks, so memory stays at CHUNK x N."""
    unit = unit_rows(vectors) if vectors is not None else None
    firsts, seconds, nearest = [], [], np.zeros(len(thumbs))
    for start in range(0, len(thumbs), CHUNK):
        rows = slice(start, start + CHUNK)
        sims = [thumbs[rows] @ thumbs.T] + ([unit[rows] @ unit.T] if unit is not None else [])
        high, low = np.maximum.reduce(sims), np.minimum.reduce(sims)
        index = np.arange(start, min(start + CHUNK, len(thumbs)))
        high[np.arange(len(index)), index] = -1.0
        passing = (high >= NEAR) & (low >= FLOOR)
        nearest[index] = high.max(1)
        i, j = np.nonzero(passing)
        keep = index[i] < j
        firsts.append(index[i][keep])
        seconds.append(j[keep])
    median = float(np.median(nearest)) if len(thumbs) > 1 else 0.0
    return np.concatenate(firsts or [np.zeros(0, int)]), np.concatenate(seconds or [np.zeros(0, int)]), median


def near_duplicates(thumbs: np.ndarray, vectors: np.ndarray | None) -> NearDuplicates:
    firsts, seconds, median = similar_pairs(thumbs, vectors)
    if median >= CROWDED:
        return NearDuplicates((), len(firsts), True)
    joined = [g for g in connected(len(thumbs), zip(firsts.tolist(), seconds.tolist())) if len(g) > 1]
    groups = sorted((tuple(g) for g in joined), key=lambda g: (-len(g), g))
    return NearDuplicates(tuple(groups), len(firsts), False)
