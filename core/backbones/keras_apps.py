"""keras.applications backbones with ImageNet weights, wrapped to take [0, 1] images.

The weights are downloaded once by Keras into KERAS_HOME (the project sets it to a folder in
the studio home unless already set); offline and uncached, loading fails fast with a message.
"""

from __future__ import annotations

import os

from core import paths
from core.backbones.hub import _host_reachable
from core.backbones.registry import KERAS_WEIGHT_FILES
from core.errors import BackboneUnavailable
from core.tf import tf, tf_keras

WEIGHTS_HOST = "https://storage.googleapis.com/tensorflow/keras-applications/"
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def preprocess(function_name: str, x):
    """Map [0, 1] RGB images to what the named keras.applications model expects."""
    if function_name in ("VGG16", "ResNet50"):
        bgr = x[..., ::-1] * 255.0
        return bgr - tf.constant(_CAFFE_MEAN_BGR, dtype=x.dtype)
    if function_name in ("MobileNetV2", "InceptionV3"):
        return x * 2.0 - 1.0
    if function_name == "EfficientNetB0":
        return x * 255.0
    raise BackboneUnavailable(f"No preprocessing known for keras.applications.{function_name}")


def _ensure_weights_available(function_name: str) -> None:
    os.environ.setdefault("KERAS_HOME", str(paths.keras_cache_dir()))
    cached = paths.keras_cache_dir() / "models" / KERAS_WEIGHT_FILES[function_name]
    if not cached.is_file() and not _host_reachable(WEIGHTS_HOST):
        raise BackboneUnavailable(
            f"keras.applications.{function_name} needs its ImageNet weights downloaded once "
            f"({KERAS_WEIGHT_FILES[function_name]}) and the network cannot be reached. Connect once, or copy the "
            f"file to {cached.parent}. Offline, use efficientnet_lite0."
        )


def base_model(function_name: str, input_size: int, weights: str | None = "imagenet") -> tf_keras.Model:
    """The convolutional base (no top, global average pooling); weights=None for random init."""
    if function_name not in KERAS_WEIGHT_FILES:
        raise BackboneUnavailable(f"keras.applications.{function_name} is not in the catalog")
    if weights == "imagenet":
        _ensure_weights_available(function_name)
    constructor = getattr(tf_keras.applications, function_name)
    try:
        return constructor(include_top=False, weights=weights, input_shape=(input_size, input_size, 3), pooling="avg")
    except Exception as exc:  # download errors surface from urllib inside get_file
        raise BackboneUnavailable(f"Loading keras.applications.{function_name} failed: {exc}") from exc


# Layers that end a block: after them a single tensor flows on (no skip connection crosses).
BLOCK_ENDS = {
    "VGG16": r"block\d_pool",
    "ResNet50": r"pool1_pool|conv\d_block\d+_out",
    "MobileNetV2": r"expanded_conv_project_BN|block_\d+_(add|project_BN)",
    "EfficientNetB0": r"block\d[a-z]_(add|project_bn)",
    "InceptionV3": r"mixed\d+",
}


def split_blocks(function_name: str, model: tf_keras.Model, input_size: int) -> list[tf_keras.Model]:
    """The base model as consecutive block models (first one takes [0, 1] images, last one pools).

    Each block after the stem is named after the layer that starts it (the previous block's end)."""
    import re

    pattern = re.compile(f"^({BLOCK_ENDS[function_name]})$")
    layers = model.layers
    last_use = {layer.name: i for i, layer in enumerate(layers)}
    for i, layer in enumerate(layers):
        for node in layer.inbound_nodes:
            inbound = node.inbound_layers if isinstance(node.inbound_layers, list) else [node.inbound_layers]
            for src in inbound:
                last_use[src.name] = max(last_use.get(src.name, i), i)
    ends, open_until = [], -1
    for i, layer in enumerate(layers):
        # A clean cut after layer i: nothing produced before i is read after i.
        if open_until <= i and pattern.match(layer.name) and i < len(layers) - 1:
            ends.append(layer.name)
        open_until = max(open_until, last_use[layer.name])
    blocks, start = [], None
    for _index, end in enumerate(ends + [None]):
        if start is None:
            x = inputs = tf_keras.Input((input_size, input_size, 3), name=f"{function_name}_image")
            body = tf_keras.Model(model.input, model.get_layer(end).output if end else model.output)
            x = body(preprocess(function_name, x))
        else:
            src = model.get_layer(start).output
            x = inputs = tf_keras.Input(src.shape[1:], name=f"{start}_in")
            body = tf_keras.Model(src, model.get_layer(end).output if end else model.output)
            x = body(x)
        name = "stem" if start is None else ("head" if end is None else start)
        blocks.append(tf_keras.Model(inputs, x, name=name))
        start = end
    return blocks
