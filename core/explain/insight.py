"""What a model looks at: layer activations, first-layer filters, Grad-CAM, SmoothGrad, features.

Works on a completed run's model (core.inference.predict.RunModel) or on a bare backbone. Layered
backbones expose every layer; opaque hub layers give feature vectors and input gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.backbones.forward import run_batches
from core.images import grid, heatmap_image, normalise, overlay
from core.tf import tf, tf_keras

SKIP_LAYER_TYPES = ("InputLayer", "Rescaling")


@dataclass(frozen=True, kw_only=True)
class LayerRef:
    name: str  # Keras layer name, or the block name for a block's output
    block: str
    shape: tuple  # per image (h, w, c)
    is_block_output: bool

    @property
    def label(self) -> str:
        h, w, c = self.shape
        what = "output" if self.is_block_output else self.name.removeprefix(self.block + "_")
        return f"{self.block} {what} - {h}x{w}x{c}"


def activation_layers(backbone, *, inner: bool = True) -> list[LayerRef]:
    """Spatial layers in forward order, labelled by block and size (layered backbones only)."""
    if not backbone.layered:
        return []
    refs, shape = [], (None, *backbone.image_shape)
    for block in backbone.blocks:
        if inner:
            for layer in block.layers:
                if type(layer).__name__ in SKIP_LAYER_TYPES or len(layer.output_shape) != 4:
                    continue
                sub = tf_keras.Model(block.inputs, layer.output)
                out = tuple(sub.compute_output_shape(shape))
                refs.append(LayerRef(name=layer.name, block=block.name, shape=tuple(out[1:]), is_block_output=False))
        out = tuple(block.compute_output_shape(shape))
        if len(out) == 4:
            refs.append(LayerRef(name=block.name, block=block.name, shape=tuple(out[1:]), is_block_output=True))
        shape = out
    return refs


def default_gradcam_layer(backbone) -> str:
    """The last spatial layer: the finest semantic map, as Grad-CAM's authors recommend."""
    return activation_layers(backbone, inner=True)[-1].name


def _forward(backbone, images: tf.Tensor, layer: str | None):
    """(tap, features): the named layer's output (None if not asked) and the feature vectors."""
    if not backbone.layered:
        if layer is not None:
            raise ValueError(f"{backbone.name} is an opaque TF Hub layer; its inner layers cannot be read.")
        return None, backbone.layer(images, training=False)
    x, tap = images, None
    for block in backbone.blocks:
        if layer == block.name:
            x = block(x, training=False)
            tap = x
        elif layer is not None and any(inner.name == layer for inner in block.layers):
            both = tf_keras.Model(block.inputs, [block.get_layer(layer).output, block.output])
            tap, x = both(x, training=False)
        else:
            x = block(x, training=False)
    if layer is not None and tap is None:
        raise ValueError(f"No layer named {layer!r} in {backbone.name}.")
    return tap, x


def _to_float(images_uint8: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(images_uint8.astype(np.float32) / 255.0)


def activations(backbone, image_uint8: np.ndarray, layer: str) -> np.ndarray:
    """(h, w, c) activations of one image at a layer."""
    tap, _ = _forward(backbone, _to_float(image_uint8[None]), layer)
    return tap.numpy()[0]


def activation_grid(maps: np.ndarray, n: int = 16, columns: int = 8, tile: int = 112) -> tuple[Image.Image, list[int]]:
    """The n channels with the highest mean activation as heat-map tiles; returns (image, channel ids)."""
    order = np.argsort(-maps.mean(axis=(0, 1)))[:n]
    tiles = [heatmap_image(maps[..., c], (tile, tile)) for c in order]
    return grid(tiles, columns=min(columns, len(tiles)), labels=[f"ch {c}" for c in order]), order.tolist()


def channel_mean_overlay(image_uint8: np.ndarray, maps: np.ndarray) -> Image.Image:
    return overlay(image_uint8, maps.mean(axis=-1), alpha=0.55)


def first_layer_kernel(backbone) -> np.ndarray:
    """The first convolution's kernel (kh, kw, 3, n), for layered and hub backbones alike."""
    variables = backbone.blocks[0].weights if backbone.layered else backbone.layer.variables
    for var in variables:
        if len(var.shape) == 4 and var.shape[2] == 3:
            return var.numpy()
    raise ValueError(f"{backbone.name}: no convolution kernel with 3 input channels found.")


def gradcam(run_model, image_uint8: np.ndarray, class_index: int | None = None,
            layer: str | None = None) -> tuple[np.ndarray, int]:
    """Grad-CAM map (h, w) in [0, 1] at `layer` (default: the last spatial layer) for the class
    (default: the predicted one); returns (map, class index)."""
    backbone = run_model.backbone
    layer = layer or default_gradcam_layer(backbone)
    images = _to_float(image_uint8[None])
    with tf.GradientTape() as tape:
        tap, features = _forward(backbone, images, layer)
        probs = run_model.head_probs(features)
        index = int(tf.argmax(probs[0])) if class_index is None else class_index
        score = tf.math.log(probs[0, index] + 1e-12)
    grads = tape.gradient(score, tap)[0].numpy()
    fmap = tap[0].numpy()
    weights = grads.mean(axis=(0, 1))
    cam = np.maximum((fmap * weights).sum(axis=-1), 0)
    return (cam / cam.max() if cam.max() > 0 else cam), index


def smoothgrad(run_model, image_uint8: np.ndarray, class_index: int | None = None, samples: int = 12,
               noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, int]:
    """SmoothGrad input saliency (h, w) in [0, 1]: mean |d log p / d pixel| over noisy copies.
    Works for every backbone, opaque TF Hub layers included."""
    backbone = run_model.backbone
    base = image_uint8.astype(np.float32)[None] / 255.0
    if class_index is None:
        _, feats = _forward(backbone, tf.convert_to_tensor(base), None)
        class_index = int(np.argmax(run_model.head_probs(feats).numpy()[0]))
    rng = np.random.default_rng(seed)
    noisy = tf.convert_to_tensor(
        np.clip(base + rng.normal(0, noise, (samples, *base.shape[1:])), 0, 1).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(noisy)
        _, feats = _forward(backbone, noisy, None)
        score = tf.reduce_sum(tf.math.log(run_model.head_probs(feats)[:, class_index] + 1e-12))
    grads = np.abs(tape.gradient(score, noisy).numpy()).mean(axis=0).max(axis=-1)
    return normalise(grads), class_index


def saliency_overlay(image_uint8: np.ndarray, heat: np.ndarray) -> Image.Image:
    return overlay(image_uint8, heat, alpha=0.5)


def feature_vectors(run_model, images_uint8: np.ndarray, batch_size: int = 32) -> np.ndarray:
    return run_batches(run_model.features, images_uint8, batch_size)
