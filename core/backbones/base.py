"""One interface over every backbone: layered (real blocks) or opaque (a hub layer).

Both give a feature model taking float32 images in [0, 1] and an ordered list of blocks
(name, parameters, output shape). Layered backbones are cut at block boundaries; opaque ones
are frozen by variable groups (see training).
"""

from __future__ import annotations

import re
from functools import cached_property

import numpy as np

from core.backbones.registry import BackboneSpec
from core.backbones.summary import BackboneSummary, BlockInfo
from core.tf import tf, tf_keras


def group_key(component: str) -> str:
    """The block a variable-name component belongs to: 'block0_dw_conv' -> 'block0',
    'stem_conv' -> 'stem', 'expanded_conv_5' and 'Conv_1' stay as they are."""
    numbered = re.match(r"^[A-Za-z]+\d+", component)
    if numbered:
        return numbered.group(0)
    if not re.search(r"\d", component):
        return component.split("_")[0]
    return component


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class Backbone:
    def __init__(self, spec: BackboneSpec, input_size: int, blocks=None, layer=None, imagenet_top=None):
        self.spec = spec
        self.input_size = input_size
        self.blocks: list[tf_keras.Model] = blocks or []  # layered backbones; empty for an opaque one
        self.layer = layer  # opaque backbones: a Keras layer mapping [0, 1] images to vectors
        self.imagenet_top = imagenet_top  # the 1000-class Dense layer, where the weights have one

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def layered(self) -> bool:
        return bool(self.blocks)

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
                infos.append(
                    BlockInfo(
                        name=block.name,
                        params=int(block.count_params()),
                        trainable_params=learnable,
                        output_shape=tuple(shape[1:]),
                    )
                )
            return infos
        infos = []
        for name, variables in self.variable_groups():
            total = sum(int(v.shape.num_elements()) for v in variables)
            learnable = sum(int(v.shape.num_elements()) for v in variables if "moving_" not in v.name)
            infos.append(BlockInfo(name=name, params=total, trainable_params=learnable, output_shape=()))
        return infos

    @property
    def num_blocks(self) -> int:
        return len(self.block_infos)

    @cached_property
    def _variables_in_use_order(self) -> list[tf.Variable]:
        """The layer's variables in the order its SavedModel function first reads them: that
        function captured each variable when the original model first used it."""
        by_handle = {id(v.handle): v for v in self.layer.variables}
        saved = getattr(self.layer, "_func", None)  # the restored SavedModel; its call function holds the traces
        function = saved.__call__ if saved is not None else None
        for concrete in getattr(function, "concrete_functions", ()):
            ordered = [by_handle[id(t)] for t in concrete.captured_inputs if id(t) in by_handle]
            if len(ordered) == len(by_handle):
                return ordered
        return sorted(self.layer.variables, key=lambda v: _natural_key(v.name))

    def variable_groups(self) -> list[tuple[str, list[tf.Variable]]]:
        """Opaque backbones: variables grouped into blocks by name prefix, in order of first use."""
        variables = self._variables_in_use_order
        names = [v.name.split(":")[0].split("/") for v in variables]
        shared = 0  # leading path components every variable shares (a model scope like 'MobilenetV2/')
        while all(len(n) > shared + 1 for n in names) and len({n[shared] for n in names}) == 1:
            shared += 1
        groups: dict[str, list[tf.Variable]] = {}
        for var, parts in zip(variables, names, strict=True):
            groups.setdefault(group_key(parts[shared]), []).append(var)
        return list(groups.items())

    def summary(self, converted_cuts: frozenset[int] = frozenset()) -> BackboneSummary:
        params = sum(b.params for b in self.block_infos)
        return BackboneSummary(
            name=self.name,
            input_size=self.input_size,
            num_blocks=self.num_blocks,
            feature_dim=self.feature_dim,
            params=params,
            layered=self.layered,
            block_infos=tuple(self.block_infos),
            converted_cuts=converted_cuts,
        )

    def unfrozen_variables(self, frozen: int) -> list[tf.Variable]:
        """Opaque backbones: the trainable variables of the groups after the first `frozen`."""
        return [v for _, vs in self.variable_groups()[frozen:] for v in vs if v.trainable]

    def tuned_weights(self, frozen: int) -> dict[str, np.ndarray]:
        """The weights fine-tuning may have changed, under names this class owns: `<block>/<i>` for
        a layered backbone's unfrozen blocks, `hub/<variable>` for an opaque layer's unfrozen groups."""
        if self.layered:
            return {f"{block.name}/{i}": w for block in self.blocks[frozen:] for i, w in enumerate(block.get_weights())}
        return {f"hub/{var.name}": var.numpy() for var in self.unfrozen_variables(frozen)}

    def load_tuned_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Put back what tuned_weights saved; other keys (the head's) are ignored."""
        if not self.layered:
            for var in self.layer.variables:
                if f"hub/{var.name}" in weights:
                    var.assign(weights[f"hub/{var.name}"])
            return
        for block in self.blocks:
            names = sorted((k for k in weights if k.startswith(block.name + "/")),
                           key=lambda k: int(k.rsplit("/", 1)[1]))
            if names:
                block.set_weights([weights[k] for k in names])

    def imagenet_classifier(self) -> tf_keras.Model:
        if self.imagenet_top is None:
            raise ValueError(f"{self.name} has no ImageNet classification top")
        inputs = tf_keras.Input(self.image_shape, name="image")
        return tf_keras.Model(inputs, self.imagenet_top(self.feature_model(inputs)), name=f"{self.name}_imagenet")
