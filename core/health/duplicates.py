"""Near duplicates: resized, re-encoded or lightly cropped copies of one photo, within and across classes.

Two signals: grey thumbnails (each image at three crops, blurred; core.health.pixels), compared at the best
of their crop pairs, which catch re-encodes, resizes and crops; and feature vectors (the backbone's last
block). A fixed threshold fails on "crowded" sets (8x8 digits, product shots on white), where a typical
image already has a neighbour nearly as close as a copy. So each pair is judged against both images' own
neighbourhoods: its distance (1 - similarity) as a share of each image's distance to its K-th nearest other
image, the larger of the two shares. A pair is a copy when that share is at most STANDS_OUT in the
thumbnails, or in the feature vectors while the thumbnails are no farther apart than the usual neighbours
(AGREES). On sets that are not crowded, the absolute rule also holds (either signal at NEAR, neither below
FLOOR), so that several copies of one photo, which are each other's nearest neighbours, are still found.

Measured with planted copies (BENCHMARKS.md, "Health on crowded sets").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.sampling import connected
from core.model.vectors import unit_rows

K = 3  # the usual neighbour: the 3rd nearest other image (a copy or two of it may be nearer)
STANDS_OUT = 0.3
AGREES = 1.0
NEAR = 0.98  # with FLOOR, the absolute rule of uncrowded sets: 0.95 doubled the pairs reported on faces
FLOOR = 0.8
CROWDED = 0.93  # crowded: the median image's nearest neighbour is at least this similar
CHUNK = 512


@dataclass(frozen=True)
class NearDuplicates:
    groups: tuple[tuple[int, ...], ...]  # indices into the items, each group sorted, largest group first
    pairs: int  # pairs judged copies
    crowded: bool  # the typical image has a neighbour nearly as close as a copy: only the relative rule spoke
    median_nearest: float  # the median image's nearest-neighbour similarity


def _thumb_similarity(thumbs: np.ndarray, rows: slice) -> np.ndarray:
    """Rows x all: the best correlation over every pair of the images' crops (symmetric over the whole)."""
    crops = thumbs.shape[1]
    return np.maximum.reduce([thumbs[rows, a] @ thumbs[:, b].T for a in range(crops) for b in range(crops)])


def _signals(thumbs: np.ndarray, unit: np.ndarray | None, rows: slice) -> list[np.ndarray]:
    return [_thumb_similarity(thumbs, rows)] + ([unit[rows] @ unit.T] if unit is not None else [])


def _usual(thumbs: np.ndarray, unit: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per signal and image, the similarity of its K-th nearest other image; and its nearest in either."""
    n = len(thumbs)
    k = min(K, n - 1)
    usual, nearest = np.zeros((1 + (unit is not None), n)), np.zeros(n)
    for start in range(0, n, CHUNK):
        rows = slice(start, min(start + CHUNK, n))
        index = np.arange(rows.start, rows.stop)
        for s, sims in enumerate(_signals(thumbs, unit, rows)):
            sims[np.arange(len(index)), index] = -np.inf
            usual[s, index] = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
            nearest[index] = np.maximum(nearest[index], sims.max(1)) if s else sims.max(1)
    return usual, nearest


def similar_pairs(thumbs: np.ndarray, vectors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(i, j) index arrays of every pair i < j judged copies, and the median image's nearest-neighbour
    similarity. thumbs: (n, crops, pixels). Rows in chunks, so memory stays at CHUNK x n a signal."""
    if len(thumbs) < 2:
        return np.zeros(0, int), np.zeros(0, int), 0.0
    unit = unit_rows(vectors) if vectors is not None else None
    usual, nearest = _usual(thumbs, unit)
    median = float(np.median(nearest))
    firsts, seconds = [], []
    for start in range(0, len(thumbs), CHUNK):
        rows = slice(start, min(start + CHUNK, len(thumbs)))
        index = np.arange(rows.start, rows.stop)
        sims = _signals(thumbs, unit, rows)
        shares = [_share(s, usual[n], index) for n, s in enumerate(sims)]
        copies = shares[0] <= STANDS_OUT
        if len(shares) > 1:
            copies |= (shares[1] <= STANDS_OUT) & (shares[0] <= AGREES)
        if median < CROWDED:
            high, low = np.maximum.reduce(sims), np.minimum.reduce(sims)
            copies |= (high >= NEAR) & (low >= FLOOR)
        i, j = np.nonzero(copies)
        keep = index[i] < j
        firsts.append(index[i][keep])
        seconds.append(j[keep])
    return np.concatenate(firsts), np.concatenate(seconds), median


def _share(sims: np.ndarray, usual: np.ndarray, index: np.ndarray) -> np.ndarray:
    """A pair's distance as a share of the usual neighbour distance, the larger of its two images'."""
    distance = 1.0 - sims
    room = np.maximum(1.0 - usual, 1e-6)
    return np.maximum(distance / room[index][:, None], distance / room[None, :])


def near_duplicates(thumbs: np.ndarray, vectors: np.ndarray | None) -> NearDuplicates:
    firsts, seconds, median = similar_pairs(thumbs, vectors)
    joined = [g for g in connected(len(thumbs), zip(firsts.tolist(), seconds.tolist())) if len(g) > 1]
    groups = sorted((tuple(g) for g in joined), key=lambda g: (-len(g), g))
    return NearDuplicates(tuple(groups), len(firsts), median >= CROWDED, median)
