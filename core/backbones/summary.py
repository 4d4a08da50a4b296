"""What is known of a backbone without holding it: its blocks and what a cut hands on (no TensorFlow)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class BlockInfo:
    name: str
    params: int  # all weights, BatchNorm moving statistics included
    trainable_params: int  # what training can change when the block is unfrozen
    output_shape: tuple  # per image, without the batch axis; () where unknown


@dataclass(frozen=True, kw_only=True)
class BackboneSummary:
    """What planning a run needs to know of a backbone, without holding it."""
    name: str
    input_size: int
    num_blocks: int
    feature_dim: int
    params: int
    layered: bool
    block_infos: tuple[BlockInfo, ...] = ()  # empty when read from a converted file's summary
    converted_cuts: frozenset[int] = frozenset()  # cuts with a converted TFLite forward on disk

    def cut_shape(self, frozen: int) -> tuple[int, ...]:
        """Per image, what the frozen part hands on after `frozen` blocks (an opaque layer cannot be
        cut: its output is the vector)."""
        if frozen == self.num_blocks or not self.layered:
            return (self.feature_dim,)
        if frozen == 0:
            return (self.input_size, self.input_size, 3)
        return tuple(self.block_infos[frozen - 1].output_shape)

    def cut_bytes(self, frozen: int, images: int) -> int:
        return images * math.prod(self.cut_shape(frozen)) * 4
