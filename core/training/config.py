"""TrainConfig: everything that defines a training run, as one frozen dataclass."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal, get_args

from core.backbones.depth import ALL
from core.backbones.registry import DEFAULT_BACKBONE
from core.data.augment import AugmentConfig
from core.errors import TrainingError
from core.model.heads import DenseSchedule, new_head

# dense (softmax + dropout) | logreg | svm (scikit-learn) | knn | nearest-mean (no training)
HeadKind = Literal["dense", "logreg", "svm", "knn", "nearest-mean"]
HEADS: tuple[HeadKind, ...] = get_args(HeadKind)
@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    dataset: str = "digits"  # demo name, folder path or zip path
    backbone: str = DEFAULT_BACKBONE
    frozen_blocks: int = ALL  # blocks frozen from the input side; ALL = feature extraction
    per_class: int | None = 20  # images per class, or None with fraction (None, None = all images)
    fraction: float | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    head: HeadKind = "dense"
    dropout: float = 0.2
    epochs: int = 10
    head_epochs: int | None = None  # phase 1 length when fine-tuning; default half of epochs
    batch_size: int = 32
    learning_rate: float = 1e-2  # the head's rate, in both phases
    fine_tune_lr_factor: float = 0.01  # the unfrozen blocks train at learning_rate x this (BENCHMARKS.md: defaults)
    two_phase: bool = True
    early_stopping: int = 0  # patience in epochs on validation loss; 0 = off
    seed: int = 0
    image_size: int | None = None  # override the backbone's input size (layered backbones)
    cache_features: bool = True  # run the frozen part once per image when nothing upstream changes
    class_weight: bool = False  # weight the loss so every class counts the same (imbalanced data)

    def validate(self) -> TrainConfig:
        for name in ("epochs", "batch_size", "frozen_blocks", "seed", "early_stopping"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TrainingError(f"{name.replace('_', ' ').capitalize()} must be a whole number, got {value!r}.")
        if self.head not in HEADS:
            raise TrainingError(f"Head {self.head!r} is unknown; choose one of {', '.join(HEADS)}.")
        if self.epochs < 1:
            raise TrainingError(f"Epochs must be at least 1, got {self.epochs}.")
        if self.batch_size < 1:
            raise TrainingError(f"Batch size must be at least 1, got {self.batch_size}.")
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < math.inf):
            raise TrainingError(f"The learning rate must be a positive number, got {self.learning_rate}.")
        if not (isinstance(self.fine_tune_lr_factor, (int, float)) and 0 < self.fine_tune_lr_factor <= 1):
            raise TrainingError(f"The fine-tune rate factor must be in (0, 1], got {self.fine_tune_lr_factor}.")
        if not 0 <= self.dropout < 1:
            raise TrainingError(f"Dropout must be in [0, 1), got {self.dropout}.")
        if self.frozen_blocks < ALL:
            raise TrainingError(f"Frozen blocks must be 0 or more (or 'all'), got {self.frozen_blocks}.")
        if self.head != "dense" and (self.frozen_blocks != ALL or self.augment.enabled):
            raise TrainingError(f"The {self.head} head is fitted on fixed feature vectors: use it with every block "
                                f"frozen and no augmentation, or choose the dense head.")
        if self.class_weight and self.head in ("knn", "nearest-mean"):
            raise TrainingError(f"The {self.head} head has no loss to weight: class weighting works with the dense, "
                                f"logreg and svm heads.")
        if self.image_size is not None and not 32 <= self.image_size <= 1024:
            raise TrainingError(f"Image size must be between 32 and 1024 pixels, got {self.image_size}.")
        return self

    def to_json(self) -> dict:
        data = asdict(self)
        data["augment"] = self.augment.to_json()
        return data

    @staticmethod
    def from_json(data: dict) -> TrainConfig:
        known = {f.name for f in fields(TrainConfig)}
        values = {k: v for k, v in data.items() if k in known}
        values["augment"] = AugmentConfig(**data.get("augment", {}))
        return TrainConfig(**values)

    def with_(self, **changes) -> TrainConfig:
        return replace(self, **changes)

    def resolved_frozen(self, num_blocks: int) -> int:
        if self.frozen_blocks == ALL:
            return num_blocks
        if self.frozen_blocks > num_blocks:
            raise TrainingError(f"This backbone has {num_blocks} blocks; cannot freeze {self.frozen_blocks}.")
        return self.frozen_blocks

    def new_head(self, num_classes: int):
        """An untrained head of this config's kind, with its dropout, class weighting and schedule."""
        schedule = DenseSchedule(learning_rate=self.learning_rate, epochs=self.epochs, batch_size=self.batch_size)
        return new_head(self.head, num_classes, dropout=self.dropout, balanced=self.class_weight, schedule=schedule)
