"""Health on crowded sets (issue 30): planted copies in the digits and faces demos, found by the rule the
Health check and the split's leak check share (core.health.near_duplicate_groups).

    .venv/bin/python -m benchmarks.crowded        # about a minute on a 2-core CPU, the models prepared
    .venv/bin/python -m benchmarks.crowded --graph --duplicates-only   # the HNSW search larger sets use

First, label issues: precision of the top k (k = the number flipped) with 5% of the labels flipped, at
200 to 1,797 digits and 100 to 200 faces, 3 seeds a size.
Then near duplicates: per demo and seed, one copy each of some originals: in turn resized by 5-15% (up or
down), re-encoded as JPEG at quality 70-90, or cropped by 3-5% on every side (and resampled to the original
size); every other copy filed under another class. Recall of the planted pairs and reported pairs per planted
pair. Seed 0 was used to choose the rule's constants; the figures in BENCHMARKS.md are seeds 1 and 2.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.photos import emit

PLANTED = {"digits": 60, "faces": 30}


def copy_of(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    if kind == "resized":
        factor = rng.uniform(1.05, 1.15) if rng.random() < 0.5 else rng.uniform(0.85, 0.95)
        return image.resize((max(2, round(w * factor)), max(2, round(h * factor))), Image.BICUBIC)
    if kind == "jpeg":
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "JPEG", quality=int(rng.integers(70, 91)))
        return Image.open(io.BytesIO(buf.getvalue())).convert(image.mode)
    cut = rng.uniform(0.03, 0.05)
    return image.resize((w, h), Image.BICUBIC, box=(w * cut, h * cut, w * (1 - cut), h * (1 - cut)))


def planted_copies(demo: str, root: Path, count: int, seed: int) -> set[frozenset[str]]:
    """The demo's folders copied to root with `count` planted copies; the planted (original, copy) pairs."""
    from core.data.sources import demo_folder

    shutil.copytree(demo_folder(demo), root, ignore=shutil.ignore_patterns(".*"))
    originals = sorted(root.rglob("*.png"))
    classes = sorted({p.parent.name for p in originals})
    rng = np.random.default_rng(seed)
    pairs = set()
    for n, index in enumerate(rng.choice(len(originals), count, replace=False)):
        kind, source = ("resized", "jpeg", "crop")[n % 3], originals[index]
        label = rng.choice([c for c in classes if c != source.parent.name]) if n % 2 else source.parent.name
        copy = root / label / f"copy{n:03d}-{kind}-{source.stem}.png"
        copy_of(Image.open(source), kind, rng).save(copy)
        pairs.add(frozenset((f"{source.parent.name}/{source.name}", f"{label}/{copy.name}")))
    return pairs


def label_issue_precision() -> None:
    """precision@k of core.health.labels' ranking with 5% of the labels flipped, on random subsets of a demo
    (the demo's real feature vectors, through the feature store), 3 seeds a size."""
    from core.data.sources import load_dataset
    from core.health import _vectors
    from core.health.labels import label_issues, out_of_fold_probs

    for demo, sizes in (("digits", (200, 400, 1000, 1797)), ("faces", (100, 200))):
        dataset = load_dataset(demo)
        items = list(dataset.items)
        vectors = _vectors(items, "efficientnet_lite0", None, None)[0]
        truth = np.array([dataset.classes.index(i.label) for i in items])
        for size in sizes:
            precisions = []
            for seed in range(3):
                rng = np.random.default_rng(seed)
                chosen = np.sort(rng.choice(len(items), size, replace=False)) if size < len(items) else np.arange(size)
                labels = truth[chosen].copy()
                flipped = rng.choice(size, round(0.05 * size), replace=False)
                labels[flipped] = (labels[flipped] + rng.integers(1, len(dataset.classes), len(flipped))) \
                    % len(dataset.classes)
                start = time.perf_counter()
                found = label_issues(out_of_fold_probs(vectors[chosen], labels, dataset.classes, seed), labels)
                top = {x.index for x in found[:len(flipped)]}
                precisions.append(len(top & set(flipped.tolist())) / len(flipped))
            emit({"measure": "label issues, 5% flipped", "demo": demo, "images": size, "flipped": len(flipped),
                  "precision_at_k": [round(p, 3) for p in precisions], "mean": round(float(np.mean(precisions)), 3),
                  "seconds_last": round(time.perf_counter() - start, 1)})


def main() -> None:
    import argparse

    from core.data.sources import load_dataset
    from core.health import near_duplicate_groups
    from core.model import neighbours

    parser = argparse.ArgumentParser()
    parser.add_argument("--graph", action="store_true",
                        help="search with the HNSW graph that sets of more than EXACT_UP_TO rows use")
    parser.add_argument("--duplicates-only", action="store_true")
    args = parser.parse_args()
    if args.graph:
        neighbours.EXACT_UP_TO = 0
    if not args.duplicates_only:
        label_issue_precision()
    work = Path(tempfile.mkdtemp(prefix="crowded-"))
    for demo, count in PLANTED.items():
        for seed in (1, 2):
            root = work / f"{demo}-{seed}"
            planted = planted_copies(demo, root, count, seed)
            items = list(load_dataset(str(root)).items)
            start = time.perf_counter()
            search = near_duplicate_groups(items, "efficientnet_lite0")
            names = [[items[i].relpath for i in g] for g in search.groups]
            reported = {frozenset((a, b)) for g in names for i, a in enumerate(g) for b in g[i + 1:]}
            emit({"measure": "near duplicates, planted copies", "demo": demo, "seed": seed, "images": len(items),
                  "planted": len(planted), "recall": round(len(reported & planted) / len(planted), 3),
                  "reported_pairs": len(reported), "per_planted": round(len(reported) / len(planted), 2),
                  "seconds": round(time.perf_counter() - start, 1), "how": search.how})
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
