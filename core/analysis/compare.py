"""Which backbone: every backbone probed on the same sample and the same folds, beside what it costs to run.

compare() reads every block's pooled output of each backbone (core.features.blocks: a second call computes
nothing), scores the linear probe on every block and the studio's k-NN head on the last, and measures each
backbone's forward throughput on this machine through the engine a frozen run uses (TFLite for the bundled
backbones, converted on first use; TensorFlow for random weights; kept per machine, so it is measured once).
The suggestion is the fastest backbone whose best probe is within the spread of the most accurate one, at the
depth its own probe suggests. Randomly initialised weights stay as a row of their own: the gap to them is what
pretraining brings.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from core import paths
from core.analysis import depth_points, sampled, saved_path, suggested_depth
from core.backbones import describe, get_spec, model_store
from core.backbones.depth import ALL, frozen_text
from core.backbones.registry import Engine, Source, backbone_title
from core.features.blocks import block_vectors
from core.fileio import atomic_write_json, read_json
from core.model import probe
from core.progress import Progress

SPEED_IMAGES, ROUNDS = 32, 3  # a batch per backbone per round, the backbones in turn, after a warm-up each


@dataclass(frozen=True, kw_only=True)
class BackboneRow:
    model: str
    pretrained: bool
    input_size: int
    params: int
    mb: float  # float32 weights, as the exported files hold them
    images_per_second: float
    engine: Engine | Literal[""]  # what ran the timed forward ("" before it is timed)
    best_block: str
    best_accuracy: float
    best_std: float
    last_accuracy: float
    last_std: float
    knn_accuracy: float
    knn_std: float
    suggested_frozen: int
    speed_low: float = 0.0  # the slowest and fastest of the interleaved timings: images_per_second is their median
    speed_high: float = 0.0

    @property
    def speed_text(self) -> str:
        """Images per second: "100 (95-105)", the median and the range of the timings."""
        spread = f" ({self.speed_low:.0f}-{self.speed_high:.0f})" if self.speed_high else ""
        return f"{self.images_per_second:.0f}{spread}"


@dataclass(frozen=True, kw_only=True)
class Comparison:
    dataset: str
    classes: tuple[str, ...]
    per_class: int
    images: int
    rows: tuple[BackboneRow, ...]
    suggested: str
    suggested_frozen: int
    reason: str
    seconds: float

    def row(self, model: str) -> BackboneRow:
        return next(r for r in self.rows if r.model == model)

    @property
    def front(self) -> tuple[str, ...]:
        """The backbones no other beats on both accuracy and speed (the Pareto front), fastest first."""
        return pareto_front(self.rows)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "classes": list(self.classes), "per_class": self.per_class,
                "images": self.images, "backbones": [asdict(r) for r in self.rows], "front": list(self.front),
                "suggested": {"model": self.suggested, "frozen_blocks": frozen_text(self.suggested_frozen),
                              "reason": self.reason}, "seconds": round(self.seconds, 2)}

    @staticmethod
    def from_json(data: dict) -> Comparison:
        suggested = data["suggested"]
        frozen = ALL if suggested["frozen_blocks"] == "all" else int(suggested["frozen_blocks"])
        return Comparison(
            dataset=data["dataset"],
            classes=tuple(data["classes"]),
            per_class=data["per_class"],
            images=data["images"],
            rows=tuple(BackboneRow(**r) for r in data["backbones"]),
            suggested=suggested["model"],
            suggested_frozen=frozen,
            reason=suggested["reason"],
            seconds=data["seconds"],
        )


def pareto_front(rows) -> tuple[str, ...]:
    fastest_first = sorted(rows, key=lambda r: -r.images_per_second)
    front, best = [], -1.0
    for row in fastest_first:
        if row.best_accuracy > best:
            front.append(row.model)
            best = row.best_accuracy
    return tuple(front)


def compare(spec: str, models: list[str], *, per_class: int | None = None, fraction: float | None = None,
            seed: int = 0, progress: Progress | None = None) -> Comparison:
    """Which backbone suits this dataset: every backbone in `models` on one sample of it. Saved as the latest
    comparison for the dataset; backbones already measured on the same sample are not run again.

    Args:
        spec: the dataset (a folder, a demo name or a zip).
        models: registry names; a bundled one not yet converted is converted first (with progress).
        per_class: images a class in the sample; fraction: or a share of each class (neither: the default).
        seed: the sample's and the probes' seed.
        progress: (stage, done, total), each stage named after its backbone.

    Returns:
        Comparison: a row per backbone (accuracy of the best and last block's linear probe and of k-NN, each with
        its spread, the speed on this machine with its range, size) and the suggested backbone and depth, with
        the reason.
    """
    start = time.perf_counter()
    dataset, items, classes, labels = sampled(spec, per_class=per_class, fraction=fraction, seed=seed,
                                              progress=progress)
    key = _sample_key(items, seed)
    known = _known_rows(spec, key)
    rows = [known[name] if name in known else _row(name, items, labels, seed, progress) for name in models]
    rows = timed(rows, progress)
    choice, reason = suggest(rows)
    comparison = Comparison(
        dataset=dataset.name,
        classes=classes,
        per_class=int(np.bincount(labels).min()),
        images=len(items),
        rows=tuple(rows),
        suggested=choice.model,
        suggested_frozen=choice.suggested_frozen,
        reason=reason,
        seconds=time.perf_counter() - start,
    )
    atomic_write_json(saved_path(spec, "compare"), {"spec": spec, "sample_key": key, **comparison.to_json()})
    return comparison


def _sample_key(items, seed: int) -> str:
    """The sample's identity: its images' contents, labels and the seed that draws the probe's folds."""
    return hashlib.sha256(f"{seed}|".encode() + "|".join(f"{i.sha256}:{i.label}" for i in items).encode()).hexdigest()


def _known_rows(spec: str, key: str) -> dict[str, BackboneRow]:
    """The rows of the last comparison on this very sample: a second call computes nothing."""
    try:
        data = read_json(saved_path(spec, "compare"))
        return {r["model"]: BackboneRow(**r) for r in data["backbones"]} if data.get("sample_key") == key else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _row(name: str, items, labels: np.ndarray, seed: int, progress: Progress | None) -> BackboneRow:
    """One backbone probed on every block, its k-NN head scored, its forward timed. A bundled backbone is
    converted first if it is not yet (with progress): its vectors and its speed then come from the engine its
    frozen runs use, as every other bundled backbone's do."""
    if get_spec(name).converted and not model_store.ready(name):
        from core.backbones import bundled

        bundled.prepare(name, progress)
    vectors = block_vectors(items, name, None, _named(progress, name))
    depth = depth_points(vectors, labels, seed, _named(progress, name))
    best = max(depth, key=lambda p: p.accuracy)
    if progress:
        progress(f"{name}: k-NN", 0, 0)
    knn = probe.neighbour_score(vectors.final, labels, seed)
    params = describe(name).params
    return BackboneRow(
        model=name,
        pretrained=get_spec(name).source != Source.RANDOM,
        input_size=get_spec(name).input_size,
        params=params,
        mb=round(params * 4 / 2**20, 1),
        images_per_second=0.0,
        engine="",
        best_block=best.block,
        best_accuracy=best.accuracy,
        best_std=best.std,
        last_accuracy=depth[-1].accuracy,
        last_std=depth[-1].std,
        knn_accuracy=knn.accuracy,
        knn_std=knn.std,
        suggested_frozen=suggested_depth(depth, layered=vectors.layout.layered),
    )


def _named(progress: Progress | None, name: str) -> Progress | None:
    return progress and (lambda stage, done, total: progress(f"{name}: {stage}", done, total))


def suggest(rows: list[BackboneRow]) -> tuple[BackboneRow, str]:
    """The fastest pretrained backbone within the most accurate one's spread, and why in one sentence."""
    pretrained = [r for r in rows if r.pretrained] or rows
    top = max(pretrained, key=lambda r: r.best_accuracy)
    close = [r for r in pretrained if r.best_accuracy >= top.best_accuracy - max(top.best_std, 0.01)]
    faster = [r for r in close if r is top or r.speed_low > top.speed_high]  # beyond the timings' spread, not noise
    choice = max(faster, key=lambda r: r.images_per_second)
    where = "with every block frozen" if choice.suggested_frozen == ALL else \
        f"fine-tuned after block {choice.suggested_frozen}"
    why = f"{backbone_title(choice.model)} {where}: its probe reaches {choice.best_accuracy:.1%}"
    if choice is top:
        why += " - the most accurate" + (" (the others within its spread are not measurably faster here)"
                                         if len(close) > 1 else "")
    else:
        why += (f", within the spread of the most accurate ({backbone_title(top.model)}, {top.best_accuracy:.1%}), "
                f"and it runs {choice.images_per_second / top.images_per_second:.1f}x as fast as "
                f"{backbone_title(top.model)} on this machine ({choice.speed_text} images/s against "
                f"{top.speed_text} images/s, "
                f"{ROUNDS} interleaved timings each)")
    random = [r for r in rows if not r.pretrained]
    if random:
        why += f"; {100 * (choice.best_accuracy - random[0].best_accuracy):.0f} points above random weights"
    return choice, why + "."


def timed(rows: list[BackboneRow], progress: Progress | None = None) -> list[BackboneRow]:
    """The rows with this machine's speed of each backbone's whole forward, through the engine a frozen run uses:
    the backbones timed in turn, ROUNDS rounds, so that whatever else the machine does falls on all of them alike;
    the median and the range of each. Kept per machine for this set of backbones and engines."""
    from core.backbones import tflite_run

    engines: dict[str, Engine] = {
        r.model: "tflite" if tflite_run.whole_converted(r.model, r.input_size) else "tensorflow" for r in rows
    }
    key = "|".join(sorted(f"{r.model}-{r.input_size}px-{engines[r.model]}" for r in rows))
    path = paths.cache_dir() / "throughput.json"
    try:
        known = read_json(path)
    except (OSError, ValueError):
        known = {}
    if not isinstance(known.get(key), dict):
        known[key] = _interleaved(rows, engines, progress)
        atomic_write_json(path, known)
    return [replace(r, engine=engines[r.model], images_per_second=float(np.median(known[key][r.model])),
                    speed_low=min(known[key][r.model]), speed_high=max(known[key][r.model])) for r in rows]


def _interleaved(rows: list[BackboneRow], engines: dict[str, Engine], progress: Progress | None) -> dict[str, list]:
    """Images per second of each backbone in each of ROUNDS rounds, the backbones taking turns."""
    from core.backbones import tflite_run

    forwards, images = {}, {}
    for r in rows:
        lite = tflite_run.whole_forward(r.model, r.input_size) if engines[r.model] == "tflite" else None
        forwards[r.model] = lite or _tensorflow_forward(r.model)
        images[r.model] = np.random.default_rng(0).integers(0, 256, (SPEED_IMAGES, r.input_size, r.input_size, 3),
                                                           dtype=np.uint8)
        forwards[r.model](images[r.model])  # warm-up: tracing, allocation
    rates: dict[str, list] = {r.model: [] for r in rows}
    for round_ in range(ROUNDS):
        if progress:
            progress("timing each backbone's forward, in turn", round_, ROUNDS)
        for r in rows:
            start = time.perf_counter()
            forwards[r.model](images[r.model])
            rates[r.model].append(round(SPEED_IMAGES / (time.perf_counter() - start), 1))
    return rates


def _tensorflow_forward(name: str):
    from core.backbones import load_backbone
    from core.backbones.forward import run_batches

    model = load_backbone(name).feature_model
    return lambda images: run_batches(model, images.astype(np.float32) / 255.0)


def latest(spec: str) -> Comparison | None:
    """The last comparison of backbones on this dataset spec, or None."""
    try:
        return Comparison.from_json(read_json(saved_path(spec, "compare")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
