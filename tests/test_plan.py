"""plan_run: every decision of a run, table-tested without TensorFlow or files."""

import pytest

from core.backbones.summary import BackboneSummary, BlockInfo
from core.data.augment import AugmentConfig
from core.data.dataset import ImageItem
from core.data.sampling import Split
from core.errors import TrainingError
from core.training.config import TrainConfig
from core.training.plan import CACHE_LIMIT_BYTES, Consumes, plan_run

VECTORS, CUTS, EPOCH_VECTORS, IMAGES = Consumes.VECTORS, Consumes.CUTS, Consumes.EPOCH_VECTORS, Consumes.IMAGES

BLOCKS = tuple(
    BlockInfo(name=f"b{i}", params=10, trainable_params=8, output_shape=(56 // (i + 1), 56 // (i + 1), 16))
    for i in range(3)
) + (BlockInfo(name="head", params=10, trainable_params=8, output_shape=(64,)),)
LAYERED = BackboneSummary(
    name="lite", input_size=224, num_blocks=4, feature_dim=64, params=40, layered=True, block_infos=BLOCKS
)
CONVERTED = BackboneSummary(
    name="lite",
    input_size=224,
    num_blocks=4,
    feature_dim=64,
    params=40,
    layered=True,
    block_infos=BLOCKS,
    converted_cuts=frozenset({4}),
)
FROM_FILE = BackboneSummary(
    name="lite", input_size=224, num_blocks=4, feature_dim=64, params=40, layered=True, converted_cuts=frozenset({4})
)  # the file's summary only
OPAQUE = BackboneSummary(
    name="hub", input_size=224, num_blocks=4, feature_dim=64, params=40, layered=False, block_infos=BLOCKS
)
AUG = AugmentConfig.standard()


def split_of(train: int, val: int = 2, test: int = 0) -> Split:
    item = ImageItem(path="/x.png", relpath="a/x.png", label="a", sha256="0")
    return Split(train=(item,) * train, val=(item,) * val, test=(item,) * test, classes=("a", "b"))


SMALL = split_of(8)
HUGE = split_of(CACHE_LIMIT_BYTES // (64 * 4) + 1)  # more vectors than the cache holds


@pytest.mark.parametrize("config, summary, split, expected", [
    # feature extraction: vectors once; on the converted file the TensorFlow backbone is never built
    (TrainConfig(), CONVERTED, SMALL, ("tflite", VECTORS, True, False, ["head"])),
    (TrainConfig(), FROM_FILE, SMALL, ("tflite", VECTORS, True, False, ["head"])),
    (TrainConfig(), LAYERED, SMALL, ("tensorflow", VECTORS, True, True, ["head"])),
    # fine-tuning: cut tensors once, the head phase first
    (TrainConfig(frozen_blocks=2), LAYERED, SMALL, ("tensorflow", CUTS, True, True, ["head", "fine-tune"])),
    (TrainConfig(frozen_blocks=2, two_phase=False), LAYERED, SMALL, ("tensorflow", CUTS, True, True, ["fine-tune"])),
    # augmentation: every epoch's vectors up front when they fit, else the images every epoch
    (TrainConfig(augment=AUG), CONVERTED, SMALL, ("tflite", EPOCH_VECTORS, True, False, ["head"])),
    (TrainConfig(augment=AUG, epochs=10**6), CONVERTED, SMALL, ("tflite", IMAGES, True, True, ["head"])),
    (TrainConfig(frozen_blocks=2, augment=AUG), LAYERED, SMALL, ("tensorflow", IMAGES, True, True,
                                                                 ["head", "fine-tune"])),
    # no cache, or too many images for it: the images every epoch
    (TrainConfig(cache_features=False), CONVERTED, SMALL, ("tensorflow", IMAGES, False, True, ["head"])),
    (TrainConfig(), CONVERTED, HUGE, ("tensorflow", IMAGES, False, True, ["head"])),
    # linear heads need every vector once, with or without the cache option
    (TrainConfig(head="logreg"), CONVERTED, SMALL, ("tflite", VECTORS, True, False, ["fit"])),
    (TrainConfig(head="logreg", cache_features=False), CONVERTED, SMALL, ("tflite", VECTORS, True, False, ["fit"])),
    (TrainConfig(head="svm", cache_features=False), LAYERED, SMALL, ("tensorflow", VECTORS, True, True, ["fit"])),
    # an opaque layer cannot be cut: fine-tuning it trains on images, by variable groups
    (TrainConfig(frozen_blocks=2), OPAQUE, SMALL, ("tensorflow", IMAGES, False, True, ["head", "fine-tune"])),
    (TrainConfig(), OPAQUE, SMALL, ("tensorflow", VECTORS, True, True, ["head"])),
])
def test_plan_table(config, summary, split, expected):
    plan = plan_run(config, split, summary)
    phases = [p.name for p in plan.phases]
    assert (plan.engine, plan.consumes, plan.precompute, plan.build_backbone, phases) == expected
    assert plan.selective == (summary is OPAQUE and config.frozen_blocks == 2)
    assert plan.describe().startswith(f"{plan.frozen} of 4 blocks frozen")


def test_a_distributed_run_builds_the_backbone():
    assert plan_run(TrainConfig(), SMALL, CONVERTED, distributed=True).build_backbone


def test_impossible_plans_are_refused_with_the_fix():
    with pytest.raises(TrainingError, match="logreg head needs the feature vectors of all .* choose the dense head"):
        plan_run(TrainConfig(head="logreg"), HUGE, CONVERTED)
    with pytest.raises(TrainingError, match="has 4 blocks; cannot freeze 5"):
        plan_run(TrainConfig(frozen_blocks=5), SMALL, LAYERED)


def test_cut_shapes():
    assert LAYERED.cut_shape(0) == (224, 224, 3) and LAYERED.cut_shape(2) == (28, 28, 16)
    assert LAYERED.cut_shape(4) == (64,) and OPAQUE.cut_shape(2) == (64,)
