"""Nearest neighbours at scale (issue 44): the exact search and the HNSW graph agree with brute force, and the
near-duplicate check judges the same pairs as comparing every image with every other."""

import numpy as np
import pytest

from core.health import duplicates
from core.model import neighbours


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, dim))[rng.integers(0, 8, n)] + rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(x: np.ndarray, k: int) -> np.ndarray:
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


@pytest.fixture(params=["exact", "graph"])
def search(request, monkeypatch):
    """Both ways of searching: the exact index, and the HNSW graph that sets above EXACT_UP_TO rows use."""
    if request.param == "graph":
        monkeypatch.setattr(neighbours, "EXACT_UP_TO", 0)
    return request.param


def test_the_nearest_others_are_those_of_brute_force(search):
    x = clustered(1500, 32)
    found = neighbours.nearest_others(x, 10)
    expected = brute_force(x, 10)
    overlap = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found.ids, expected, strict=False)])
    assert overlap >= (1.0 if search == "exact" else 0.97), overlap
    assert not (found.ids == np.arange(len(x))[:, None]).any()  # never a row itself
    assert np.all(np.diff(found.similarities, axis=1) <= 1e-6)  # most similar first
    sims = np.einsum("nd,nkd->nk", x, x[found.ids])
    assert np.allclose(sims, found.similarities, atol=1e-5)


def test_exact_copies_and_tiny_sets():
    x = clustered(5, 8)
    x[3] = x[1]  # an exact copy ties with the row itself: the row, not its copy, is dropped
    found = neighbours.nearest_others(x, 10)
    assert found.ids.shape == (5, 10) and found.ids[1, 0] == 3 and found.ids[3, 0] == 1
    assert (found.ids[:, 4:] == -1).all() and np.isneginf(found.similarities[:, 4:]).all()


def test_groups_are_compared_at_their_best_part_pair(search):
    parts = clustered(600 * 3, 16, seed=1).reshape(600, 3, 16)
    found = neighbours.nearest_of_groups(parts, 5)
    best = np.einsum("iad,jbd->ijab", parts, parts).max(axis=(2, 3))
    np.fill_diagonal(best, -np.inf)
    expected = np.argsort(-best, axis=1, kind="stable")[:, :5]
    overlap = np.mean([len(set(f) & set(e)) / 5 for f, e in zip(found.ids, expected, strict=False)])
    assert overlap >= (1.0 if search == "exact" else 0.97), overlap
    assert np.allclose(found.similarities, np.take_along_axis(best, found.ids, axis=1), atol=1e-5)


def every_pair_judged(thumbs: np.ndarray, vectors: np.ndarray) -> set:
    """The rule of duplicates.py applied to every pair (the quadratic check the neighbour lists replaced)."""
    from core.model.vectors import unit_rows

    unit = unit_rows(vectors)
    sims = [np.einsum("iad,jbd->ijab", thumbs, thumbs).max(axis=(2, 3)), unit @ unit.T]
    usual, nearest = [], np.full(len(thumbs), -np.inf)
    for s in sims:
        off = s.copy()
        np.fill_diagonal(off, -np.inf)
        usual.append(-np.partition(-off, duplicates.K - 1, axis=1)[:, duplicates.K - 1])
        nearest = np.maximum(nearest, off.max(1))
    room = [np.maximum(1 - u, 1e-6) for u in usual]
    shares = [np.maximum((1 - s) / r[:, None], (1 - s) / r[None, :]) for s, r in zip(sims, room, strict=False)]
    copies = (shares[0] <= duplicates.STANDS_OUT) | ((shares[1] <= duplicates.STANDS_OUT) &
                                                     (shares[0] <= duplicates.AGREES))
    if np.median(nearest) < duplicates.CROWDED:
        copies |= (np.maximum(*sims) >= duplicates.NEAR) & (np.minimum(*sims) >= duplicates.FLOOR)
    i, j = np.nonzero(np.triu(copies, 1))
    return set(zip(i.tolist(), j.tolist(), strict=False))


def test_near_duplicates_judge_the_pairs_every_pair_comparison_judges(search):
    rng = np.random.default_rng(3)
    thumbs = clustered(400 * 3, 64, seed=2).reshape(400, 3, 64)
    vectors = clustered(400, 48, seed=4)
    planted = rng.choice(400, (12, 2), replace=False)
    thumbs[planted[:, 1]] = thumbs[planted[:, 0]] + rng.normal(0, 0.03, (12, 3, 64))
    thumbs /= np.linalg.norm(thumbs, axis=2, keepdims=True)
    vectors[planted[:, 1]] = vectors[planted[:, 0]] + rng.normal(0, 0.01, (12, 48))
    first, second, _ = duplicates.similar_pairs(thumbs.astype(np.float32), vectors)
    found = set(zip(first.tolist(), second.tolist(), strict=False))
    assert {(min(a, b), max(a, b)) for a, b in planted.tolist()} <= found
    assert found == every_pair_judged(thumbs.astype(np.float32), vectors)


def test_the_label_checks_vote_is_a_nearest_neighbour_classifier_per_fold():
    """One neighbour search, each image counting only neighbours outside its fold, gives the probabilities of a
    k-NN fitted fold by fold (scikit-learn's, as before issue 44)."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    from core.health import labels as health_labels

    x = clustered(600, 24, seed=5)
    y = np.argmax(x[:, :4], axis=1)
    folds = list(StratifiedKFold(10, shuffle=True, random_state=0).split(x, y))
    fold_of = np.empty(len(y), int)
    for f, (_, held) in enumerate(folds):
        fold_of[held] = f
    ours = health_labels._vote(x, y, fold_of, 10, 4)
    theirs = np.zeros_like(ours)
    for train, held in folds:
        knn = KNeighborsClassifier(10, weights="distance", metric="cosine").fit(x[train], y[train])
        theirs[held[:, None], knn.classes_] = knn.predict_proba(x[held])
    assert np.abs(ours - theirs).max() < 1e-5


def test_a_large_pool_is_clustered_in_mini_batches_and_picks_one_image_a_cluster(monkeypatch):
    from sklearn.cluster import MiniBatchKMeans

    from core.model import acquisition

    rng = np.random.default_rng(6)
    centres = rng.normal(size=(6, 32)) * 4
    truth = rng.integers(0, 6, 1200)
    pool = (centres[truth] + rng.normal(size=(1200, 32))).astype(np.float32)
    used = []
    monkeypatch.setattr(acquisition, "FULL_KMEANS_UP_TO", 500)
    real = MiniBatchKMeans.fit_predict
    monkeypatch.setattr(MiniBatchKMeans, "fit_predict", lambda self, *a, **k: used.append(self) or real(self, *a, **k))
    picks = acquisition.typical(6, pool, np.zeros((0, 32), np.float32), seed=0)
    assert used and sorted(truth[[p.index for p in picks]].tolist()) == list(range(6))
