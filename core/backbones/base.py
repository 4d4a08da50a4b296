"""One interface over every backbone: layered (real blocks) or opaque (a hub layer).

Both give a feature model taking float32 images in [0, 1] and an ordered list of blocks
(name, parameters, output shape). Layered backbones are cut at block boundaries; opaque ones
are frozen by variable groups (see training).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from core.backbones.registry import BackboneSpec
from core.backbones.tf import tf, tf_keras


@dataclass(frozen=True)
class BlockInfo:
    name: str
    params: int  # all weights, BatchNorm moving statistics included
    trainable_params: int  # what training can change when the block is unfrozen
    output_shape: tuple  # per image, without the batch axis; () where unknown


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class Backbone:
    def __init__(self, spec: BackboneSpec, input_size: int, blocks=None, layer=None, imagenet_top=None):
        self.spec = spec
        self.input_size = input_size
        self.blocks: list[tf_keras.Model] | None = blocks  # layered backbones
        self.layer = layer  # opaque backbones: a Keras layer mapping [0, 1] images to vectors
        self.imagenet_top = imagenet_top  # the 1000-class Dense layer, where the weights have one

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def layered(self) -> bool:
        return self.blocks is not None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, 3)

    @cached_property
    def feature_model(self) -> tf_keras.Model:
        inputs = tf_keras.Input(self.image_shape, name="image")
        if self.layered:
            x = inputs
            for block in self.blocks:
                x = block(x)
        else:
            x = self.layer(inputs, training=False)
        return tf_keras.Model(inputs, x, name=f"{self.name}_features")

    @property
    def feature_dim(self) -> int:
        return int(self.feature_model.output_shape[-1])

    @cached_property
    def block_infos(self) -> list[BlockInfo]:
        if self.layered:
            infos, shape = [], (None, *self.image_shape)
            for block in self.blocks:
                shape = tuple(block.compute_output_shape(shape))
                learnable = sum(int(w.shape.num_elements()) for w in block.weights if "moving_" not in w.name)
                infos.append(BlockInfo(block.name, int(block.count_params()), learnable, tuple(shape[1:])))
            return infos
        infos = []
        for name, variables in self.variable_groups():
            total = sum(int(v.shape.num_elements()) for v in variables)
            learnable = sum(int(v.shape.num_elements()) for v in variables if "moving_" not in v.name)
            infos.append(BlockInfo(name, total, learnable, ()))
        return infos

    @property
    def num_blocks(self) -> int:
        return len(self.block_infos)

    def variable_groups(self) -> list[tuple[str, list[tf.Variable]]]:
        """Opaque backbones: the layer's variables grouped by their name's first path component."""
        groups: dict[str, list[tf.Variable]] = {}
        for var in self.layer.variables:
            prefix = var.name.split("/")[0].split(":")[0]
            groups.setdefault(prefix, []).append(var)
        return sorted(groups.items(), key=lambda item: _natural_key(item[0]))

    def imagenet_classifier(self) -> tf_keras.Model:
        if self.imagenet_top is None:
            raise ValueError(f"{self.name} has no ImageNet classification top")
        inputs = tf_keras.Input(self.image_shape, name="image")
        return tf_keras.Model(inputs, self.imagenet_top(self.feature_model(inputs)), name=f"{self.name}_imagenet")
