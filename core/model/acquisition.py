"""Which unlabelled images to label next: acquisition strategies on feature vectors, with a reason for each pick.

- typical (TypiClust, Hacohen et al. 2022): cluster the labelled and unlabelled vectors together into as many
  clusters as there will be labels; from the largest clusters that hold no labelled image, take the most typical
  image (the densest: smallest mean distance to its nearest neighbours in the cluster). At very small budgets
  typical and diverse picks beat uncertainty, which then picks outliers the model cannot yet use.
- margin (margin sampling with diversity, as in Cluster-Margin, Citovsky et al. 2021): the images whose two top
  classes are closest, spread by clustering a few times more candidates than picks and taking the least sure of
  each cluster, so that ten picks are not ten copies of one hesitation.
- auto: typical while there are fewer than SWITCH_PER_CLASS labels per class on average, margin after (on
  digits after five rounds, switching at 4 beat switching at 3, typical throughout and margin throughout:
  BENCHMARKS.md, "Which images to label next").
- random: the baseline every strategy is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast, get_args

import numpy as np

from core.model.neighbours import nearest_others
from core.model.rejection import RejectionRule, fit_rule
from core.model.vectors import unit_rows

Strategy = Literal["auto", "uncertainty", "diverse", "random"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
SWITCH_PER_CLASS = 4
NEIGHBOURS = 20  # TypiClust's typicality: the mean distance to this many nearest neighbours
CANDIDATES = 5  # margin: candidates per pick, clustered for diversity
MAX_NEW_SHARE = 0.5  # a rule that flags more of the pool than this says the pool differs, not which images do
FULL_KMEANS_UP_TO = 5_000  # vectors; measured in BENCHMARKS.md, "The studio at 20,000 images"
MINI_BATCH = 2_048
MAX_CLUSTERS = 500  # k-means cost grows with clusters; beyond this the largest uncovered clusters are the same


@dataclass(frozen=True, kw_only=True)
class Pick:
    index: int  # into the pool
    score: float  # the strategy's measure, higher first: typicality, or 1 - margin
    reason: str


@dataclass(frozen=True, kw_only=True)
class Ranking:
    picks: tuple[Pick, ...]
    new_class: tuple[int, ...]  # pool indices the "none of these" rule flags: maybe a class not labelled yet
    strategy: Strategy  # the one that ran (auto resolved)
    unlike: float = 0.0  # the share of the pool the rule flagged; over MAX_NEW_SHARE nothing is set apart


def rank(pool: np.ndarray, labelled: np.ndarray, labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...], *,
         n: int, strategy: str = "auto", seed: int = 0, rule: RejectionRule | None = None) -> Ranking:
    """Which pool images to label next. When the rule flags most of the pool, the pool as a whole looks unlike
    the labelled images (other cameras, sizes, light) and the whole pool is ranked.

    Args:
        pool: the unlabelled images' feature vectors (m, d).
        labelled: the labelled images' feature vectors (k, d), and labels their class indices (k,).
        probs: the model's class probabilities for the pool (m, classes).
        classes: the class names, in index order.
        n: how many to pick.
        strategy: one of STRATEGIES; "auto" is diverse below SWITCH_PER_CLASS labels a class, else uncertainty.
        seed: for the random and diverse strategies.
        rule: the run's "none of these" rule; None fits one on the labelled vectors.

    Returns:
        Ranking: the picks (pool index, score, reason), the pool images set apart as a possible new class, the
        strategy that ran and the share of the pool the rule flagged.

    Raises:
        ValueError: an unknown strategy.
    """
    rule = rule or fit_rule(labelled, labels, len(classes))
    flagged = rule.unknown(pool) if len(pool) else np.zeros(0, bool)
    unlike = float(flagged.mean()) if len(pool) else 0.0
    if unlike > MAX_NEW_SHARE:
        flagged = np.zeros(len(pool), bool)
    rest = np.flatnonzero(~flagged)
    used = resolve(strategy, len(labels) / max(len(classes), 1))
    chosen = pick(used, n, pool[rest], labelled, probs[rest], classes, seed)
    picks = tuple(Pick(index=int(rest[p.index]), score=p.score, reason=p.reason) for p in chosen)
    return Ranking(picks=picks, new_class=tuple(int(i) for i in np.flatnonzero(flagged)), strategy=used, unlike=unlike)


def resolve(strategy: str, labels_per_class: float) -> Strategy:
    """The strategy a name means: auto adapts to the labels per class."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")
    if strategy != "auto":
        return cast(Strategy, strategy)  # one of STRATEGIES, checked above
    return "diverse" if labels_per_class < SWITCH_PER_CLASS else "uncertainty"


def pick(strategy: str, n: int, pool: np.ndarray, labelled: np.ndarray, probs: np.ndarray,
         classes: tuple[str, ...], seed: int = 0) -> list[Pick]:
    """n picks from the pool's vectors (strategy already resolved); probs: the model's on the pool."""
    n = min(n, len(pool))
    if n <= 0:
        return []
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(len(pool))[:n]
        return [Pick(index=int(i), score=0.0, reason="drawn at random (the baseline)") for i in order]
    if strategy == "diverse":
        return typical(n, pool, labelled, seed)
    return margin(n, pool, probs, classes, seed)


def _kmeans(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Full k-means on small sets; mini-batch k-means (Sculley, 2010) above FULL_KMEANS_UP_TO vectors, where
    every full iteration reads every vector."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(vectors) <= FULL_KMEANS_UP_TO:
        return KMeans(k, n_init=1, random_state=seed).fit_predict(vectors)
    return MiniBatchKMeans(k, n_init=3, batch_size=MINI_BATCH, random_state=seed).fit_predict(vectors)


def _typicality(vectors: np.ndarray) -> np.ndarray:
    """1 / mean cosine distance to the NEIGHBOURS nearest others (all of them in a small group)."""
    if len(vectors) == 1:
        return np.ones(1)
    found = nearest_others(vectors, min(NEIGHBOURS, len(vectors) - 1))
    return 1.0 / np.maximum((1.0 - found.similarities).mean(1), 1e-6)


def typical(n: int, pool: np.ndarray, labelled: np.ndarray, seed: int = 0) -> list[Pick]:
    """TypiClust: the most typical image of each of the n largest clusters without a labelled image."""
    vectors = unit_rows(np.concatenate([labelled, pool]).astype(np.float32))
    k = min(len(labelled) + n, MAX_CLUSTERS, len(vectors))
    clusters = _kmeans(vectors, k, seed)
    covered = set(clusters[:len(labelled)].tolist())
    pool_clusters = clusters[len(labelled):]
    sizes = np.bincount(pool_clusters, minlength=k)
    order = sorted(range(k), key=lambda c: (c in covered, -sizes[c]))  # uncovered first, then the largest
    picks: list[Pick] = []
    for c in order:
        members = np.flatnonzero(pool_clusters == c)
        if not len(members):
            continue
        typicality = _typicality(vectors[len(labelled) + members])
        best = int(members[int(typicality.argmax())])
        picks.append(
            Pick(index=best, score=float(typicality.max()), reason=_typical_reason(int(sizes[c]), c in covered))
        )
        if len(picks) == n:
            break
    top = max(p.score for p in picks)
    return [Pick(index=p.index, score=round(p.score / top, 4), reason=p.reason) for p in picks]


def _typical_reason(size: int, covered: bool) -> str:
    if covered:
        return f"typical of {size} unlabelled images near some labelled ones"
    return f"a kind of image none of your labelled ones looks like (typical of {size} unlabelled)"


def margin(n: int, pool: np.ndarray, probs: np.ndarray, classes: tuple[str, ...], seed: int = 0) -> list[Pick]:
    """The least sure images (smallest gap between the top two classes), one per cluster of candidates."""
    top2 = np.sort(probs, axis=1)[:, -2:] if probs.shape[1] > 1 else np.concatenate([np.zeros_like(probs), probs], 1)
    gaps = top2[:, 1] - top2[:, 0]
    candidates = np.argsort(gaps, kind="stable")[:min(len(pool), CANDIDATES * n)]
    clusters = _kmeans(unit_rows(pool[candidates].astype(np.float32)), n, seed) if len(candidates) > n else \
        np.arange(len(candidates))
    chosen = [int(candidates[np.flatnonzero(clusters == c)[0]]) for c in np.unique(clusters)]  # least sure first
    chosen.sort(key=lambda i: gaps[i])
    return [
        Pick(index=i, score=round(float(1.0 - gaps[i]), 4), reason=_margin_reason(probs[i], classes))
        for i in chosen[:n]
    ]


def _margin_reason(p: np.ndarray, classes: tuple[str, ...]) -> str:
    first, second = np.argsort(-p)[:2] if len(p) > 1 else (0, 0)
    if p[first] - p[second] < 0.5:
        return (f"the model hesitates between {classes[first]} and {classes[second]} "
                f"({p[first]:.0%} / {p[second]:.0%})")
    return f"among the least sure of the rest: {classes[first]} at {p[first]:.0%}, then {classes[second]}"
