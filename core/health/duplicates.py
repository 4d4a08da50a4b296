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

Only pairs in some image's neighbour lists (its LISTED nearest in either signal, core.model.neighbours) are
judged: a copy is nearer than the usual neighbour, so it is in them, and the cost grows about as n log n, not
with every pair. Measured with planted copies (BENCHMARKS.md, "Health on crowded sets" and "Near duplicates
at scale").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.sampling import connected
from core.model.neighbours import Nearest, nearest_of_groups, nearest_others
from core.model.vectors import unit_rows

K = 3  # the usual neighbour: the 3rd nearest other image (a copy or two of it may be nearer)
STANDS_OUT = 0.3
AGREES = 1.0
NEAR = 0.98  # with FLOOR, the absolute rule of uncrowded sets: 0.95 doubled the pairs reported on faces
FLOOR = 0.8
CROWDED = 0.93  # crowded: the median image's nearest neighbour is at least this similar
LISTED = 10  # neighbours listed per image and signal: the K-th is the usual one, the rest hold a photo's copies
CHUNK = 20_000  # pairs compared at once: 2 x 60 MB of thumbnails


@dataclass(frozen=True, kw_only=True)
class NearDuplicates:
    groups: tuple[tuple[int, ...], ...]  # indices into the items, each group sorted, largest group first
    pairs: int  # pairs judged copies
    crowded: bool  # the typical image has a neighbour nearly as close as a copy: only the relative rule spoke
    median_nearest: float  # the median image's nearest-neighbour similarity


def _neighbour_lists(thumbs: np.ndarray, unit: np.ndarray | None) -> list[Nearest]:
    """Per signal, every image's LISTED most similar others."""
    listed = min(LISTED, len(thumbs) - 1)
    return [nearest_of_groups(thumbs, listed)] + ([nearest_others(unit, listed)] if unit is not None else [])


def _candidates(lists: list[Nearest]) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) where one image is among the other's listed neighbours in some signal."""
    pairs = np.concatenate([np.stack([np.broadcast_to(np.arange(len(x.ids))[:, None], x.ids.shape)[x.ids >= 0],
                                      x.ids[x.ids >= 0]]) for x in lists], axis=1)
    pairs = np.unique(np.sort(pairs, axis=0), axis=1)
    return pairs[0], pairs[1]


def _pair_similarities(thumbs: np.ndarray, unit: np.ndarray | None, first: np.ndarray,
                       second: np.ndarray) -> list[np.ndarray]:
    """Per signal, each pair's similarity: thumbnails at the best of their crop pairs, then feature vectors."""
    best = _in_chunks(len(first), lambda s: np.matmul(thumbs[first[s]], thumbs[second[s]].transpose(0, 2, 1))
                      .max(axis=(1, 2)))
    if unit is None:
        return [best]
    return [best, _in_chunks(len(first), lambda s: np.einsum("pd,pd->p", unit[first[s]], unit[second[s]]))]


def _in_chunks(n: int, similarity) -> np.ndarray:
    """similarity(slice of pairs) over CHUNK pairs at a time, joined (empty for no pair)."""
    parts = [similarity(slice(start, min(start + CHUNK, n))) for start in range(0, n, CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def similar_pairs(thumbs: np.ndarray, vectors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(i, j) index arrays of every pair i < j judged copies, and the median image's nearest-neighbour
    similarity. thumbs: (n, crops, pixels). Only pairs in some image's neighbour lists are judged: a copy is
    nearer than the usual (K-th) neighbour, so it is in them."""
    if len(thumbs) < 2:
        return np.zeros(0, int), np.zeros(0, int), 0.0
    unit = unit_rows(vectors).astype(np.float32) if vectors is not None else None
    lists = _neighbour_lists(thumbs, unit)
    k = min(K, len(thumbs) - 1)
    usual = np.stack([np.where(np.isfinite(x.similarities[:, k - 1]), x.similarities[:, k - 1], -1.0)
                      for x in lists])
    median = float(np.median(np.max([x.similarities[:, 0] for x in lists], axis=0)))
    first, second = _candidates(lists)
    sims = _pair_similarities(thumbs, unit, first, second)
    shares = [_share(s, usual[n], first, second) for n, s in enumerate(sims)]
    copies = shares[0] <= STANDS_OUT
    if len(shares) > 1:
        copies |= (shares[1] <= STANDS_OUT) & (shares[0] <= AGREES)
    if median < CROWDED:
        copies |= (np.maximum.reduce(sims) >= NEAR) & (np.minimum.reduce(sims) >= FLOOR)
    return first[copies], second[copies], median


def _share(sims: np.ndarray, usual: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A pair's distance as a share of the usual neighbour distance, the larger of its two images'."""
    distance = 1.0 - sims
    room = np.maximum(1.0 - usual, 1e-6)
    return np.maximum(distance / room[first], distance / room[second])


def near_duplicates(thumbs: np.ndarray, vectors: np.ndarray | None) -> NearDuplicates:
    """Groups of images that are copies of each other, in less than quadratic time: each image's nearest others
    in each signal, then the relative rule (a pair counts when it is far nearer than both images' usual
    neighbours).

    Args:
        thumbs: (n, 3 * 256) grey thumbnails of three crops per image (core.health.pixels), float32.
        vectors: (n, d) feature vectors, or None to judge by the thumbnails alone.

    Returns:
        NearDuplicates: the groups (item indices, largest first), the pairs judged copies, and whether the set is
        crowded (its typical nearest neighbour is close), with that median similarity.
    """
    firsts, seconds, median = similar_pairs(thumbs, vectors)
    joined = [g for g in connected(len(thumbs), zip(firsts.tolist(), seconds.tolist(), strict=True)) if len(g) > 1]
    groups = sorted((tuple(g) for g in joined), key=lambda g: (-len(g), g))
    return NearDuplicates(groups=tuple(groups), pairs=len(firsts), crowded=median >= CROWDED, median_nearest=median)
