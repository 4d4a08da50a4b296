"""Near duplicates at scale (issue 44): which nearest-neighbour library, and health's duplicate and label checks
at 100,000 images.

    python -m benchmarks.neighbours libraries [--rows 300000]   # the libraries on thumbnail-like crop vectors
    python -m benchmarks.neighbours health [--images 100000]    # core.health's checks on synthetic looks

The data is synthetic and made here: clustered unit vectors like the thumbnails' crops (256 values) and the
backbone's feature vectors (1280), with copies planted at a known place. Recall is measured against an exact
search of a sample of rows. Every figure is printed; nothing is assumed."""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

SAMPLE = 500  # rows whose exact neighbours are computed to measure recall
LISTED = 10


def clustered(rows: int, dim: int, *, seed: int = 0, clusters: int = 50, spread: float = 1.0) -> np.ndarray:
    return clustered_with_ids(rows, dim, seed=seed, clusters=clusters, spread=spread)[0]


def clustered_with_ids(rows: int, dim: int, *, seed: int = 0, clusters: int = 50,
                       spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows around `clusters` random centres, and each row's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    ids = rng.integers(0, clusters, rows)
    x = centres[ids] + rng.normal(0, spread, (rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), ids


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _faiss(x: np.ndarray, k: int):
    from core.model import neighbours

    saved = neighbours.EXACT_UP_TO
    neighbours.EXACT_UP_TO = 0  # the graph, whatever the size
    try:
        return neighbours.nearest_others(x, k).ids
    finally:
        neighbours.EXACT_UP_TO = saved


def _exact(x: np.ndarray, k: int):
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index.search(x, k + 1)[1]


def _usearch(x: np.ndarray, k: int):
    from usearch.index import Index

    index = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=32, expansion_add=80, expansion_search=128)
    index.add(np.arange(len(x)), x, threads=2)
    return index.search(x, k + 1, threads=2).keys


def _hnswlib(x: np.ndarray, k: int):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=x.shape[1])
    index.init_index(max_elements=len(x), ef_construction=80, M=32)
    index.set_num_threads(2)
    index.add_items(x, np.arange(len(x)))
    index.set_ef(128)
    return index.knn_query(x, k + 1)[0]


def _pynndescent(x: np.ndarray, k: int):
    from pynndescent import NNDescent

    return NNDescent(x, metric="dot", n_neighbors=max(30, k + 1), random_state=0, n_jobs=2).neighbor_graph[0][:, :k + 1]


LIBRARIES = {"exact (faiss-cpu's flat index, quadratic)": _exact, "faiss-cpu (HNSW)": _faiss, "usearch": _usearch,
             "hnswlib": _hnswlib, "pynndescent": _pynndescent}


def recall(ids: np.ndarray, x: np.ndarray, sample: np.ndarray, k: int) -> float:
    exact = np.argsort(-(x[sample] @ x.T), axis=1)[:, 1:k + 1]
    found = [[j for j in row if j != i][:k] for i, row in zip(sample, ids[sample], strict=False)]
    return float(np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact, strict=False)]))


def libraries(rows: int, skip: list[str]) -> None:
    x = clustered(rows, 256)
    sample = np.random.default_rng(1).choice(rows, SAMPLE, replace=False)
    print(f"{rows:,} rows x 256 (the crops of {rows // 3:,} images), {LISTED} neighbours each, 2 threads")
    print("| library | build and search | recall@10 | peak RSS of the process so far |\n| --- | --- | --- | --- |")
    for name, search in LIBRARIES.items():
        if any(name.startswith(s) for s in skip):
            continue
        try:
            start = time.perf_counter()
            ids = search(x, LISTED)
            seconds = time.perf_counter() - start
        except ImportError as exc:
            print(f"| {name} | not installed ({exc}) | | |")
            continue
        print(f"| {name} | {seconds:.1f} s | {recall(ids, x, sample, LISTED):.3f} | {peak_mb():,.0f} MB |", flush=True)


def planted_looks(images: int, copies: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thumbnails (images, 3, 256), feature vectors (images, 1280) and `copies` planted (original, copy) pairs."""
    rng = np.random.default_rng(seed)
    thumbs = clustered(images * 3, 256, seed=seed).reshape(images, 3, 256)
    vectors = clustered(images, 1280, seed=seed + 1, clusters=10, spread=3.0)
    pairs = rng.choice(images, (copies, 2), replace=False)
    thumbs[pairs[:, 1]] = thumbs[pairs[:, 0]] + rng.normal(0, 0.02, (copies, 3, 256)).astype(np.float32)
    thumbs /= np.linalg.norm(thumbs, axis=2, keepdims=True)
    vectors[pairs[:, 1]] = vectors[pairs[:, 0]] + rng.normal(0, 0.005, (copies, 1280)).astype(np.float32)
    return thumbs, vectors, pairs


def health(images: int, checks: list[str]) -> None:
    from core.health.duplicates import similar_pairs

    thumbs, vectors, planted = planted_looks(images, 200)
    if "labels" in checks:
        _labels(vectors, images, planted)
    if "duplicates" not in checks:
        return
    start = time.perf_counter()
    first, second, _ = similar_pairs(thumbs, vectors)
    duplicates = time.perf_counter() - start
    found = set(zip(first.tolist(), second.tolist(), strict=False))
    hit = sum((min(a, b), max(a, b)) in found for a, b in planted.tolist())
    print(f"{images:,} images: near duplicates {duplicates:.1f} s, {hit} of {len(planted)} planted pairs found, "
          f"{len(found)} pairs reported; peak RSS {peak_mb():,.0f} MB", flush=True)


def _labels(vectors: np.ndarray, images: int, planted: np.ndarray) -> None:
    """The label check on 10 classes that the vectors' clusters make, 5% of the labels moved: precision of the
    top k (k = the number moved)."""
    from core.health.labels import label_issues, out_of_fold_probs

    rng = np.random.default_rng(2)
    labels = clustered_with_ids(images, 1280, seed=1, clusters=10, spread=3.0)[1]  # the vectors' clusters
    labels[planted[:, 1]] = labels[planted[:, 0]]  # a copy is of its original's class
    moved = rng.choice(images, images // 20, replace=False)
    labels[moved] = (labels[moved] + rng.integers(1, 10, len(moved))) % 10
    start = time.perf_counter()
    found = label_issues(out_of_fold_probs(vectors, labels, tuple(map(str, range(10)))), labels)
    top = {x.index for x in found[:len(moved)]}
    print(f"{images:,} images: label check {time.perf_counter() - start:.1f} s, precision of the top {len(moved):,} "
          f"{len(top & set(moved.tolist())) / len(moved):.3f} ({len(found):,} flagged); peak RSS {peak_mb():,.0f} MB",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["libraries", "health"])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--checks", nargs="*", default=["duplicates", "labels"])
    parser.add_argument("--skip", nargs="*", default=[], help="libraries to leave out, by the start of their name")
    args = parser.parse_args()
    libraries(args.rows, args.skip) if args.what == "libraries" else health(args.images, args.checks)


if __name__ == "__main__":
    main()
