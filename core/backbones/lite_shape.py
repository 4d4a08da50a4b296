"""The bundled EfficientNet-Lite family's architectures as numbers, for code that must not load TensorFlow to
know them: the converted forward's checks (core.backbones.tflite_run) and the Train page's block diagram and
parameter counts. core.backbones.efficientnet_lite builds the same blocks in tf_keras; tests hold the two to
the same counts, and each table below to what its checkpoint's tensor shapes imply (from_state_dict)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.backbones.summary import BackboneSummary, BlockInfo

# Lite0's stages as (repeats, kernel, stride, expand ratio, in channels, out channels). The larger members scale
# repeats and widths but keep stem, head and each stage's kernel and stride (the checkpoints show it).
_LITE0 = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
_LITE1 = ((1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 40), (4, 3, 2, 6, 40, 80),
          (4, 5, 1, 6, 80, 112), (5, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
_LITE2 = ((1, 3, 1, 1, 32, 16), (3, 3, 2, 6, 16, 24), (3, 5, 2, 6, 24, 48), (4, 3, 2, 6, 48, 88),
          (4, 5, 1, 6, 88, 120), (5, 5, 2, 6, 120, 208), (1, 3, 1, 6, 208, 352))
_STRIDES = tuple(stage[2] for stage in _LITE0)


@dataclass(frozen=True, kw_only=True)
class LiteArch:
    input_size: int
    stages: tuple[tuple[int, int, int, int, int, int], ...]
    stem_width: int = 32
    feature_dim: int = 1280

    @property
    def num_blocks(self) -> int:
        """stem + the MBConv blocks + head."""
        return 2 + sum(stage[0] for stage in self.stages)

    @property
    def head_in(self) -> int:
        return self.stages[-1][-1]

    def mbconv_specs(self) -> list[tuple[int, int, int, int, int]]:
        """(kernel, stride, expand, in, out) of each MBConv block."""
        specs = []
        for repeats, kernel, stride, expand, cin, cout in self.stages:
            for r in range(repeats):
                specs.append((kernel, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
        return specs

    def block_infos(self, input_size: int | None = None) -> tuple[BlockInfo, ...]:
        """The blocks' names, parameters and output shapes for square images of input_size ("same" padding:
        a stride of 2 halves the side, rounding up)."""
        side = math.ceil((input_size or self.input_size) / 2)
        params, trainable = _conv_bn(3 * 3 * 3 * self.stem_width, self.stem_width)
        infos = [BlockInfo(name="stem", params=params, trainable_params=trainable,
                           output_shape=(side, side, self.stem_width))]
        for index, (kernel, stride, expand, cin, cout) in enumerate(self.mbconv_specs()):
            side = math.ceil(side / stride)
            params, trainable = _mbconv_params(kernel, expand, cin, cout)
            infos.append(BlockInfo(name=f"block{index}", params=params, trainable_params=trainable,
                                   output_shape=(side, side, cout)))
        params, trainable = _conv_bn(self.head_in * self.feature_dim, self.feature_dim)
        infos.append(BlockInfo(name="head", params=params, trainable_params=trainable,
                               output_shape=(self.feature_dim,)))
        return tuple(infos)


ARCHS = {
    "efficientnet_lite0": LiteArch(input_size=224, stages=_LITE0),
    "efficientnet_lite1": LiteArch(input_size=240, stages=_LITE1),
    "efficientnet_lite2": LiteArch(input_size=260, stages=_LITE2),
}


def from_state_dict(sd: dict[str, np.ndarray], input_size: int) -> LiteArch:
    """The architecture a checkpoint's tensor shapes imply: widths and kernels from the convolutions, stages
    where the channels change (each stage's first block changes them), strides from the family's stages."""
    blocks, specs = sum(1 for key in sd if key.endswith("._depthwise_conv.weight")), []
    for i in range(blocks):
        wide, _, kernel, _ = sd[f"_blocks.{i}._depthwise_conv.weight"].shape
        cout = sd[f"_blocks.{i}._project_conv.weight"].shape[0]
        expand_conv = sd.get(f"_blocks.{i}._expand_conv.weight")
        cin = wide if expand_conv is None else expand_conv.shape[1]
        specs.append((kernel, wide // cin, cin, cout))
    stages: list[tuple[int, int, int, int, int, int]] = []
    for kernel, expand, cin, cout in specs:
        if cin != cout or not stages:
            stages.append((0, kernel, _STRIDES[len(stages)], expand, cin, cout))
        stages[-1] = (stages[-1][0] + 1, *stages[-1][1:])
    return LiteArch(input_size=input_size, stages=tuple(stages), stem_width=int(sd["_conv_stem.weight"].shape[0]),
                    feature_dim=int(sd["_conv_head.weight"].shape[0]))


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


def summary(name: str, arch: LiteArch, input_size: int | None = None) -> BackboneSummary:
    """What the Train page and the planner need of a bundled architecture, in microseconds."""
    size = input_size or arch.input_size
    infos = arch.block_infos(size)
    return BackboneSummary(
        name=name,
        input_size=size,
        num_blocks=arch.num_blocks,
        feature_dim=arch.feature_dim,
        params=sum(b.params for b in infos),
        layered=True,
        block_infos=infos,
    )


def arch_of(name: str) -> LiteArch:
    """The architecture of a bundled, randomly initialised or hub-exported family member, by backbone name."""
    from core.backbones.registry import get_spec

    spec = get_spec(name)
    if spec.arch not in ARCHS:
        raise ValueError(f"{name} is not an EfficientNet-Lite backbone")
    return ARCHS[spec.arch]
