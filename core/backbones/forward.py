"""Inference helpers every layer above the backbones uses: batched forward passes through one traced
function, and the model that reads every block's pooled output in one pass (with its Layout). TensorFlow
loads only when one of them runs: a frozen run's prediction and the analysis's stored vectors need none."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPAQUE_BLOCK = "output"  # an opaque TF Hub layer's one "block": its final vector


def run_batches(model, x: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Inference over x in batches through one traced function (a fixed signature, so the last
    partial batch does not retrace); faster than model.predict, most of all for one image (BENCHMARKS.md)."""
    from core.tf import tf

    if len(x) == 0:
        return np.zeros((0, *model.output_shape[1:]), np.float32)
    key = (tuple(x.shape[1:]), str(x.dtype))
    functions = model.__dict__.setdefault("_studio_inference", {})  # traced once per model and input kind
    if key not in functions:
        spec = tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype))
        functions[key] = tf.function(lambda t: model(t, training=False), input_signature=[spec])
    function = functions[key]
    return np.concatenate([function(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)])


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Which blocks a stored vector holds, input side first, and each block's width."""
    blocks: tuple[str, ...]
    dims: tuple[int, ...]
    layered: bool
    trainable_params: tuple[int, ...]  # what fine-tuning each block trains

    def cost_from(self, block: int, num_classes: int) -> int:
        """Trainable parameters when every block from `block` on is fine-tuned, with a softmax head."""
        return sum(self.trainable_params[block:]) + self.dims[-1] * num_classes + num_classes

    @property
    def width(self) -> int:
        return sum(self.dims)

    def to_json(self) -> dict:
        return {"blocks": list(self.blocks), "dims": list(self.dims), "layered": self.layered,
                "trainable_params": list(self.trainable_params)}

    @staticmethod
    def from_json(data: dict) -> Layout:
        return Layout(
            blocks=tuple(data["blocks"]),
            dims=tuple(int(d) for d in data["dims"]),
            layered=bool(data["layered"]),
            trainable_params=tuple(int(p) for p in data["trainable_params"]),
        )


def pooled_blocks_model(backbone):
    """uint8 images -> every block's output, global-average pooled and concatenated (a layered backbone),
    or the opaque layer's vector; with its Layout."""
    from core.tf import tf_keras

    image_in = tf_keras.Input(backbone.image_shape, dtype="uint8", name="image")
    x = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
    if not backbone.layered:
        out = backbone.layer(x, training=False)
        everything = sum(b.trainable_params for b in backbone.block_infos)
        layout = Layout(
            blocks=(OPAQUE_BLOCK,), dims=(backbone.feature_dim,), layered=False, trainable_params=(everything,)
        )
        return tf_keras.Model(image_in, out, name="pooled_blocks"), layout
    pooled = []
    for block in backbone.blocks:
        x = block(x, training=False)
        pooled.append(tf_keras.layers.GlobalAveragePooling2D(name=f"{block.name}_pool")(x) if len(x.shape) == 4
                      else x)
    layout = Layout(
        blocks=tuple(b.name for b in backbone.blocks),
        dims=tuple(int(p.shape[-1]) for p in pooled),
        layered=True,
        trainable_params=tuple(b.trainable_params for b in backbone.block_infos),
    )
    out = tf_keras.layers.Concatenate(name="blocks")(pooled)
    return tf_keras.Model(image_in, out, name="pooled_blocks"), layout
