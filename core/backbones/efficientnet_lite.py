"""The EfficientNet-Lite family in tf_keras, as named blocks: stem, block0..blockN, head (18 for Lite0).

Each block is its own small functional model, so the backbone can be cut at any block
boundary (frozen part / trainable part) and any layer inside a block can be read out for
activations and Grad-CAM. Every block takes and returns images of any spatial size.
The stem takes float32 images in [0, 1] and applies the checkpoint's preprocessing,
(p - 127) / 128 for pixels p in 0..255.
"""

from __future__ import annotations

import numpy as np

from core.backbones.lite_shape import LiteArch
from core.tf import tf_keras

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99


def _bn(name):
    return tf_keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _relu6(name):
    return tf_keras.layers.ReLU(max_value=6.0, name=name)


def _stem(width: int) -> tf_keras.Model:
    x = inputs = tf_keras.Input((None, None, 3), name="stem_input")
    x = tf_keras.layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="stem_preprocess")(x)
    x = tf_keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_relu")(x)
    return tf_keras.Model(inputs, x, name="stem")


def _mbconv(index: int, kernel: int, stride: int, expand: int, cin: int, cout: int) -> tf_keras.Model:
    p = f"block{index}"
    x = inputs = tf_keras.Input((None, None, cin), name=f"{p}_input")
    if expand != 1:
        x = tf_keras.layers.Conv2D(cin * expand, 1, padding="same", use_bias=False, name=f"{p}_expand_conv")(x)
        x = _bn(f"{p}_expand_bn")(x)
        x = _relu6(f"{p}_expand_relu")(x)
    x = tf_keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{p}_dw_conv")(x)
    x = _bn(f"{p}_dw_bn")(x)
    x = _relu6(f"{p}_dw_relu")(x)
    x = tf_keras.layers.Conv2D(cout, 1, padding="same", use_bias=False, name=f"{p}_project_conv")(x)
    x = _bn(f"{p}_project_bn")(x)
    if stride == 1 and cin == cout:
        x = tf_keras.layers.Add(name=f"{p}_add")([x, inputs])
    return tf_keras.Model(inputs, x, name=p)


def _head(cin: int, width: int) -> tf_keras.Model:
    x = inputs = tf_keras.Input((None, None, cin), name="head_input")
    x = tf_keras.layers.Conv2D(width, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = _bn("head_bn")(x)
    x = _relu6("head_relu")(x)
    x = tf_keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    return tf_keras.Model(inputs, x, name="head")


def build_blocks(arch: LiteArch) -> list[tf_keras.Model]:
    """The blocks in order, freshly initialised (random weights)."""
    blocks = [_stem(arch.stem_width)]
    blocks += [_mbconv(i, *spec) for i, spec in enumerate(arch.mbconv_specs())]
    blocks.append(_head(arch.head_in, arch.feature_dim))
    return blocks


def chain(blocks, input_shape, name: str) -> tf_keras.Model:
    """A functional model applying `blocks` in order to an input of `input_shape`."""
    x = inputs = tf_keras.Input(input_shape, name=f"{name}_input")
    for block in blocks:
        x = block(x)
    return tf_keras.Model(inputs, x, name=name)


def build_classifier_top() -> tf_keras.layers.Dense:
    return tf_keras.layers.Dense(1000, activation="softmax", name="predictions")


def _bn_weights(sd, prefix):
    return [sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"]]


def _conv_weights(w):
    return w.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)


def _depthwise_weights(w):
    return w.transpose(2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)


def load_state_dict(arch: LiteArch, blocks, top: tf_keras.layers.Dense | None, sd: dict[str, np.ndarray]) -> None:
    """Copy the PyTorch checkpoint's weights into the blocks (and the 1000-class top)."""
    stem = blocks[0]
    stem.get_layer("stem_conv").set_weights([_conv_weights(sd["_conv_stem.weight"])])
    stem.get_layer("stem_bn").set_weights(_bn_weights(sd, "_bn0"))
    for i, (_, _, expand, _, _) in enumerate(arch.mbconv_specs()):
        block, src = blocks[1 + i], f"_blocks.{i}"
        if expand != 1:
            block.get_layer(f"block{i}_expand_conv").set_weights([_conv_weights(sd[f"{src}._expand_conv.weight"])])
            block.get_layer(f"block{i}_expand_bn").set_weights(_bn_weights(sd, f"{src}._bn0"))
        block.get_layer(f"block{i}_dw_conv").set_weights([_depthwise_weights(sd[f"{src}._depthwise_conv.weight"])])
        block.get_layer(f"block{i}_dw_bn").set_weights(_bn_weights(sd, f"{src}._bn1"))
        block.get_layer(f"block{i}_project_conv").set_weights([_conv_weights(sd[f"{src}._project_conv.weight"])])
        block.get_layer(f"block{i}_project_bn").set_weights(_bn_weights(sd, f"{src}._bn2"))
    head = blocks[-1]
    head.get_layer("head_conv").set_weights([_conv_weights(sd["_conv_head.weight"])])
    head.get_layer("head_bn").set_weights(_bn_weights(sd, "_bn1"))
    if top is not None:
        top.set_weights([sd["_fc.weight"].T, sd["_fc.bias"]])
