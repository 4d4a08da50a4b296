"""A run is planned before it runs: plan_run names every decision the trainer will follow.

Pure: no TensorFlow, no files. The trainer calls it with what it knows of the backbone (from the
converted file's summary, or from the built backbone) and then runs the stages the plan names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.backbones.depth import ALL
from core.backbones.registry import Engine
from core.backbones.summary import BackboneSummary
from core.data.sampling import Split
from core.errors import TrainingError
from core.training.config import TrainConfig

CACHE_LIMIT_BYTES = 1536 * 1024**2  # above this the cut tensors are recomputed each epoch
NOMINAL_OVERHEAD_S = 8.0  # worker start, backbone load, evaluation
NOMINAL_IMAGES_PER_SECOND = 80.0  # the forward pass at 224x224 on a 2-core CPU



class Consumes(StrEnum):
    """What the trainable part (trainable blocks + head) consumes."""
    VECTORS = "vectors"  # feature vectors, once per image: every block frozen, no augmentation
    CUTS = "cut tensors"  # the frozen part's output, once per image: fine-tuning without augmentation
    EPOCH_VECTORS = "per-epoch vectors"  # each epoch's augmented images through the frozen part, up front
    IMAGES = "images"  # the whole model runs on the (augmented) images every epoch


class PhaseName(StrEnum):
    HEAD = "head"  # the head alone, every block frozen
    FINE_TUNE = "fine-tune"  # the unfrozen blocks and the head together
    FIT = "fit"  # a head fitted in one step (logreg, svm, knn, nearest-mean)


def nominal_seconds(config: TrainConfig, images: int) -> float:
    """A run's work in nominal seconds: one forward pass per image with the feature cache, one per training image
    and epoch with augmentation, plus backward work for fine-tuned blocks. Real seconds are this times the pace
    this machine's finished runs kept (core.rates "run")."""
    n_train = images * (1 - config.val_fraction - config.test_fraction)
    seconds = images / NOMINAL_IMAGES_PER_SECOND + NOMINAL_OVERHEAD_S
    if config.augment.enabled:
        seconds += n_train * config.epochs / NOMINAL_IMAGES_PER_SECOND
    elif config.frozen_blocks != ALL:
        seconds += n_train * config.epochs / NOMINAL_IMAGES_PER_SECOND * 0.5
    return seconds


@dataclass(frozen=True, kw_only=True)
class Phase:
    name: PhaseName
    epochs: int
    learning_rate: float | None  # the unfrozen blocks' rate when fine-tuning
    head_learning_rate: float | None = None  # fine-tuning: the head keeps its own rate (None: learning_rate)


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    frozen: int  # blocks frozen from the input side
    num_blocks: int
    engine: Engine  # what runs the frozen part
    consumes: Consumes
    precompute: bool  # un-augmented images go through the frozen part once (input, or validation and evaluation)
    build_backbone: bool  # the TensorFlow backbone is needed (trainable blocks, the TensorFlow engine, images)
    head: str
    phases: tuple[Phase, ...]
    selective: bool  # an opaque layer fine-tuned by variable groups (it cannot be cut)

    @property
    def cached(self) -> bool:
        """The trainable part trains on tensors computed once per image."""
        return self.consumes in (Consumes.VECTORS, Consumes.CUTS)

    @property
    def fine_tunes(self) -> bool:
        return any(p.name == "fine-tune" for p in self.phases)

    def describe(self) -> str:
        once = " once per image" if self.precompute else " every epoch"
        phases = ", then ".join(f"{p.name} ({p.epochs} epoch{'s' if p.epochs > 1 else ''})" for p in self.phases)
        return (f"{self.frozen} of {self.num_blocks} blocks frozen, run{once} by {self.engine}; "
                f"the {self.head} head trains on {self.consumes}: {phases}.")

    def to_json(self) -> dict:
        return {"engine": self.engine, "consumes": self.consumes, "precompute": self.precompute,
                "phases": [p.name for p in self.phases], "description": self.describe()}


def plan_phases(config: TrainConfig, frozen: int, num_blocks: int) -> list[Phase]:
    """Head only on a frozen backbone first, then fine-tune from block `frozen` at a lower rate."""
    if config.head != "dense":
        return [Phase(name=PhaseName.FIT, epochs=1, learning_rate=None)]
    if frozen == num_blocks:
        return [Phase(name=PhaseName.HEAD, epochs=config.epochs, learning_rate=config.learning_rate)]
    fine_lr, head_lr = config.learning_rate * config.fine_tune_lr_factor, config.learning_rate
    if not config.two_phase or config.epochs < 2:
        return [
            Phase(name=PhaseName.FINE_TUNE, epochs=config.epochs, learning_rate=fine_lr, head_learning_rate=head_lr)
        ]
    head = config.head_epochs if config.head_epochs is not None else max(1, config.epochs // 2)
    head = min(max(head, 1), config.epochs - 1)
    return [
        Phase(name=PhaseName.HEAD, epochs=head, learning_rate=head_lr),
        Phase(name=PhaseName.FINE_TUNE, epochs=config.epochs - head, learning_rate=fine_lr, head_learning_rate=head_lr),
    ]


def _dense_input(
    config: TrainConfig, split: Split, summary: BackboneSummary, frozen: int, precompute: bool
) -> Consumes:
    """What a dense head (and the blocks after the cut) train on."""
    if not precompute:
        return Consumes.IMAGES
    everything = frozen == summary.num_blocks
    if not config.augment.enabled:
        return Consumes.VECTORS if everything else Consumes.CUTS
    if everything and config.epochs * len(split.train) * summary.feature_dim * 4 <= CACHE_LIMIT_BYTES:
        return Consumes.EPOCH_VECTORS
    return Consumes.IMAGES


def plan_run(config: TrainConfig, split: Split, summary: BackboneSummary, *, distributed: bool = False) -> RunPlan:
    """Every decision of a run, made before anything heavy runs. Pure: no TensorFlow, no files.

    Args:
        config: the run's settings.
        split: its images (only the counts matter here).
        summary: the backbone's blocks, sizes and which cuts have a converted TFLite file.
        distributed: training under a tf.distribute strategy (the TensorFlow backbone is then always built).

    Returns:
        RunPlan: the frozen depth, what runs the frozen part (engine), what the trainable part consumes, whether
        the frozen part's outputs are computed once, whether TensorFlow's backbone is built, and the phases.

    Raises:
        TrainingError: a combination that cannot work, with a sentence saying what to change.
    """
    frozen = config.resolved_frozen(summary.num_blocks)
    images = len(split.train) + len(split.val) + len(split.test)
    fits = summary.cut_bytes(frozen, images) <= CACHE_LIMIT_BYTES
    selective = not summary.layered and frozen < summary.num_blocks
    if config.head != "dense":  # fitted on every vector at once, so it needs them whatever cache_features says
        if not fits:
            raise TrainingError(f"The {config.head} head needs the feature vectors of all {images} images in memory "
                                f"(over {CACHE_LIMIT_BYTES // 1024**2} MB); sample fewer images per class or "
                                f"choose the dense head.")
        precompute, consumes = True, Consumes.VECTORS
    else:
        precompute = config.cache_features and fits and not selective
        consumes = _dense_input(config, split, summary, frozen, precompute)
    engine: Engine = "tflite" if precompute and frozen in summary.converted_cuts else "tensorflow"
    build = distributed or engine == "tensorflow" or frozen < summary.num_blocks or consumes == Consumes.IMAGES
    return RunPlan(
        frozen=frozen,
        num_blocks=summary.num_blocks,
        engine=engine,
        consumes=consumes,
        precompute=precompute,
        build_backbone=build,
        head=config.head,
        phases=tuple(plan_phases(config, frozen, summary.num_blocks)),
        selective=selective,
    )
