"""EfficientNet-Lite0's architecture as numbers, for code that must not load TensorFlow to know it: the
converted forward's checks (core.backbones.tflite_run) and the Train page's block diagram and parameter counts.
core.backbones.efficientnet_lite builds the same blocks in tf_keras; a test holds the two to the same counts."""

from __future__ import annotations

import math

from core.backbones.summary import BackboneSummary, BlockInfo

INPUT_SIZE = 224
FEATURE_DIM = 1280
NUM_BLOCKS = 18  # stem + 16 MBConv blocks + head
STEM_WIDTH = 32
# (repeats, kernel, stride, expand ratio, in channels, out channels)
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def mbconv_specs() -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expand, in, out) of each of the 16 MBConv blocks."""
    specs = []
    for repeats, kernel, stride, expand, cin, cout in STAGES:
        for r in range(repeats):
            specs.append((kernel, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
    return specs


def _conv_bn(weights: int, channels: int) -> tuple[int, int]:
    """(all, trainable) parameters of a bias-free convolution and its BatchNorm: the moving mean and
    variance (2 a channel) never train."""
    return weights + 4 * channels, weights + 2 * channels


def _mbconv_params(kernel: int, expand: int, cin: int, cout: int) -> tuple[int, int]:
    wide = cin * expand
    parts = [_conv_bn(kernel * kernel * wide, wide), _conv_bn(wide * cout, cout)]
    if expand != 1:
        parts.append(_conv_bn(cin * wide, wide))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def block_infos(input_size: int = INPUT_SIZE) -> tuple[BlockInfo, ...]:
    """The 18 blocks' names, parameters and output shapes for square images of input_size ("same"
    padding: a stride of 2 halves the side, rounding up)."""
    side = math.ceil(input_size / 2)
    infos = [BlockInfo("stem", *_conv_bn(3 * 3 * 3 * STEM_WIDTH, STEM_WIDTH), (side, side, STEM_WIDTH))]
    for index, (kernel, stride, expand, cin, cout) in enumerate(mbconv_specs()):
        side = math.ceil(side / stride)
        infos.append(BlockInfo(f"block{index}", *_mbconv_params(kernel, expand, cin, cout), (side, side, cout)))
    last = STAGES[-1][-1]
    infos.append(BlockInfo("head", *_conv_bn(last * FEATURE_DIM, FEATURE_DIM), (FEATURE_DIM,)))
    return tuple(infos)


def summary(name: str, input_size: int | None = None) -> BackboneSummary:
    """What the Train page and the planner need of the bundled architecture, in microseconds."""
    size = input_size or INPUT_SIZE
    infos = block_infos(size)
    return BackboneSummary(name, size, NUM_BLOCKS, FEATURE_DIM, sum(b.params for b in infos), layered=True,
                           block_infos=infos)
