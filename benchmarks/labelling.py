"""Which images to label next (issue 32): simulated labelling rounds against random picks, and `core suggest`'s speed.

    .venv/bin/python -m benchmarks.labelling            # about 5 minutes on a 2-core CPU
    .venv/bin/python -m benchmarks.labelling --mini-batch   # the same rounds, every pool clustered in mini-batches

1. Simulated rounds, on the digits demo and then the faces demo. A fixed held-out test set (30% of the demo,
   stratified, the same for every seed) is never labelled. The rest is the pool, its labels hidden. Each seed
   starts from 2 labelled images per class drawn at random, then runs 5 rounds of 10 picks: the studio's
   default (`rank(strategy="auto")`: the "none of these" rule sets its flagged images apart, then TypiClust
   while the smallest class has fewer than 5 labels, margin with diversity after) against random picks from the
   whole pool. After each round the default head (a feature-extraction run's dense head, its default schedule)
   is trained on every labelled image's stored vector and scored on the test set. Mean ± std over 5 seeds.
   The fixed strategies ("diverse", "uncertainty") are run the same way, to show why auto switches.
2. Speed, whole process: `python -m core suggest --data digits --pool POOL --n 20` on a pool of 1,000 PNGs
   (digits upscaled to 64 px, bilinear, so that no vector is in the store), in a studio home whose model store
   holds what `make run` prepares: see speed().
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.photos import emit

SEEDS = 5
ROUNDS = 5
PER_ROUND = 10
START_PER_CLASS = 2
TEST_SHARE = 0.3


def demo_vectors(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from core.backbones.registry import DEFAULT_BACKBONE
    from core.data.sources import load_dataset
    from core.features.blocks import block_vectors

    dataset = load_dataset(name)
    vectors = block_vectors(dataset.items, DEFAULT_BACKBONE, None).final
    index = {c: i for i, c in enumerate(dataset.classes)}
    return vectors, np.array([index[i.label] for i in dataset.items]), dataset.classes


def _fixed_test(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(12345)
    test = np.concatenate([rng.choice(np.flatnonzero(labels == c), int(round(TEST_SHARE * (labels == c).sum())),
                                      replace=False) for c in np.unique(labels)])
    return np.setdiff1d(np.arange(len(labels)), test), np.sort(test)


def _score(vectors, labels, labelled, test, classes, seed) -> tuple[float, np.ndarray]:
    from core.training.config import TrainConfig

    head = TrainConfig(seed=seed).new_head(len(classes)).fit(vectors[labelled], labels[labelled], len(classes), seed)
    accuracy = float((head.probs(vectors[test]).argmax(1) == labels[test]).mean())
    return accuracy, head


def simulate(vectors: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], strategy: str,
             seed: int) -> list[float]:
    """Test accuracy after 0..ROUNDS rounds."""
    from core.model.acquisition import rank

    pool, test = _fixed_test(labels)
    rng = np.random.default_rng(seed)
    labelled = list(np.concatenate([rng.choice(pool[labels[pool] == c], START_PER_CLASS, replace=False)
                                    for c in range(len(classes))]))
    accuracies = []
    for round_ in range(ROUNDS + 1):
        accuracy, head = _score(vectors, labels, np.array(labelled), test, classes, seed)
        accuracies.append(accuracy)
        if round_ == ROUNDS:
            break
        rest = np.setdiff1d(pool, labelled)
        if strategy == "random":
            chosen = rng.choice(rest, PER_ROUND, replace=False)
        else:
            ranking = rank(vectors[rest], vectors[labelled], labels[labelled], head.probs(vectors[rest]), classes,
                           n=PER_ROUND, strategy=strategy, seed=seed + round_)
            chosen = rest[[p.index for p in ranking.picks]]
        labelled += list(chosen)
    return accuracies


def rounds_table(name: str, strategies=("auto", "random", "diverse", "uncertainty")) -> dict:
    vectors, labels, classes = demo_vectors(name)
    start = START_PER_CLASS * len(classes)
    out = {}
    for strategy in strategies:
        runs = np.array([simulate(vectors, labels, classes, strategy, seed) for seed in range(SEEDS)])
        out[strategy] = {"mean": runs.mean(0).round(4).tolist(), "std": runs.std(0).round(4).tolist()}
    out["labels"] = [start + r * PER_ROUND for r in range(ROUNDS + 1)]
    return out


def _pool(folder: Path, count: int, side: int = 64) -> None:
    """count digits at `side` px, bilinear: bytes no store holds, unlike the demo's (or another side's)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    folder.mkdir(parents=True)
    for i, image in enumerate(load_digits().images[:count]):
        array = np.pad(255 - (image / 16.0 * 255.0).round().astype(np.uint8), 2, constant_values=255)
        Image.fromarray(array, "L").resize((side, side), Image.BILINEAR).save(folder / f"pool_{i:04d}.png")


def _suggest_seconds(env: dict, pool: Path) -> tuple[float, int, dict]:
    """(wall seconds, peak RSS in MB, the JSON line) of one `core suggest` process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "core", "suggest", "--data", "digits", "--pool", str(pool),
                                "--n", "20"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = process.stdout.read()
    _, code, usage = os.wait4(process.pid, 0)
    assert code == 0, out
    return round(time.perf_counter() - start, 1), round(usage.ru_maxrss / 1024), json.loads(out.splitlines()[-1])


def speed(count: int = 1000) -> dict:
    """Three cases: a fresh home (the demo written, its 1,797 labelled images and the pool embedded); a new pool
    when the labelled images are embedded already (after a first suggestion, Analyze or Health); the same pool
    again."""
    home = Path(tempfile.mkdtemp(prefix="studio-suggest-"))
    env = {**os.environ, "STUDIO_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "core", "prepare"], env=env, check=True, capture_output=True)
    _pool(home / "pool", count)
    fresh, fresh_mb, _ = _suggest_seconds(env, home / "pool")
    _pool(home / "pool2", count, side=72)
    new_pool, new_mb, _ = _suggest_seconds(env, home / "pool2")
    again, again_mb, result = _suggest_seconds(env, home / "pool2")
    return {"pool": count, "fresh_home_s": fresh, "new_pool_s": new_pool, "again_s": again,
            "peak_mb": [fresh_mb, new_mb, again_mb], "strategy": result["strategy"], "picks": len(result["picks"])}


def main() -> None:
    if "--mini-batch" in sys.argv:  # every pool clustered as pools above 5,000 images are (issue 44)
        from core.model import acquisition

        acquisition.FULL_KMEANS_UP_TO = 0
        for name in ("digits", "faces"):
            emit({"benchmark": f"rounds_{name}", "kmeans": "mini-batch", **rounds_table(name, ("auto", "diverse"))})
        return
    for name in ("digits", "faces"):
        emit({"benchmark": f"rounds_{name}", **rounds_table(name)})
    if "--no-speed" not in sys.argv:
        emit({"benchmark": "suggest_speed", **speed()})


if __name__ == "__main__":
    main()
