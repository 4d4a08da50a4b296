"""The most similar other rows of a set of unit vectors (cosine similarity), in less than quadratic time at scale.

Up to EXACT_UP_TO rows the search is exact (a flat inner-product index: one BLAS product, as before); above, an
HNSW graph (Malkov and Yashunin, 2018) through faiss, whose cost grows about as n log n. The library and the
graph's settings were chosen by measurement (BENCHMARKS.md, "Near duplicates at scale")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_UP_TO = 10_000  # rows; above, the graph costs less: at 20,000 x 1280 it took 8 s, the exact search 25 s
LINKS = 32  # HNSW's M: links per node
BUILD_BREADTH = 80  # efConstruction
SEARCH_BREADTH = 128  # efSearch, at least the neighbours asked for


@dataclass(frozen=True, kw_only=True)
class Nearest:
    """Per row, its `k` most similar other rows, most similar first; -1 and -inf where fewer were found."""

    ids: np.ndarray  # (n, k) int64
    similarities: np.ndarray  # (n, k) float32


def nearest_others(unit: np.ndarray, k: int) -> Nearest:
    """The k most similar other rows of every row of `unit` (float32 rows of length 1)."""
    n = len(unit)
    unit = np.ascontiguousarray(unit, dtype=np.float32)
    asked = min(k + 1, n)
    similarities, ids = _search(unit, asked)
    ids, similarities = _without_self(ids, similarities, k)
    return Nearest(ids=ids, similarities=similarities)


def _search(unit: np.ndarray, asked: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    if len(unit) <= EXACT_UP_TO:
        index: faiss.Index = faiss.IndexFlatIP(unit.shape[1])
    else:
        graph = faiss.IndexHNSWFlat(unit.shape[1], LINKS, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = BUILD_BREADTH
        graph.hnsw.efSearch = max(SEARCH_BREADTH, asked)
        index = graph
    index.add(unit)
    return index.search(unit, asked)


def _without_self(ids: np.ndarray, similarities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Drops each row's own entry (not always first: an exact copy ties with it), keeping k columns."""
    rows = np.arange(len(ids))[:, None]
    own = ids == rows
    own[~own.any(axis=1), -1] = True  # not found among its own neighbours: drop the farthest instead
    own[np.cumsum(own, axis=1) > 1] = False  # one entry a row
    keep = ~own
    kept_ids = ids[keep].reshape(len(ids), -1)
    kept_sims = similarities[keep].reshape(len(ids), -1).astype(np.float32)
    missing = kept_ids < 0
    kept_sims[missing] = -np.inf
    return _pad(kept_ids, k, -1), _pad(kept_sims, k, -np.inf)


def _pad(array: np.ndarray, k: int, fill) -> np.ndarray:
    if array.shape[1] >= k:
        return array[:, :k]
    return np.concatenate([array, np.full((len(array), k - array.shape[1]), fill, array.dtype)], axis=1)


def nearest_of_groups(parts: np.ndarray, k: int) -> Nearest:
    """For sets of several vectors per item, (n, parts, d): each item's k most similar other items, an item
    pair's similarity being the best of its part pairs (a photo's crops, say)."""
    n, per = parts.shape[:2]
    found = nearest_others(parts.reshape(n * per, -1), min(per * (k + 1), n * per - 1))
    owners = np.repeat(np.arange(n), per)[:, None]
    first, second, sims = _best_per_pair(np.broadcast_to(owners, found.ids.shape), found.ids // per,
                                         found.similarities, found.ids >= 0)
    return _top_k(first, second, sims, n, k)


def _best_per_pair(first, second, sims, valid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (first, second) item pairs, first != second, each with its best similarity."""
    keep = valid & (first != second)
    first, second, sims = first[keep], second[keep], sims[keep]
    order = np.lexsort((-sims, second, first))
    first, second, sims = first[order], second[order], sims[order]
    new = np.ones(len(first), bool)
    new[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    return first[new], second[new], sims[new]


def _top_k(first: np.ndarray, second: np.ndarray, sims: np.ndarray, n: int, k: int) -> Nearest:
    order = np.lexsort((-sims, first))
    first, second, sims = first[order], second[order], sims[order]
    starts = np.searchsorted(first, np.arange(n))
    rank = np.arange(len(first)) - starts[first]
    keep = rank < k
    ids = np.full((n, k), -1, np.int64)
    similarities = np.full((n, k), -np.inf, np.float32)
    ids[first[keep], rank[keep]] = second[keep]
    similarities[first[keep], rank[keep]] = sims[keep]
    return Nearest(ids=ids, similarities=similarities)
