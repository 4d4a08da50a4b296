"""The frozen part of the bundled backbone through TensorFlow Lite (XNNPACK on the CPU).

Converting: TensorFlow writes the frozen part as a float32 TFLite file (int8 weights were slower
and changed the vectors). It takes a while, so `prepare` does it once for the default cut (every block
frozen) and keeps it in the converted-models folder; running a converted file needs no TensorFlow
(core.backbones.tflite_run).
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.fileio import atomic_write_bytes, atomic_write_json
from core.tf import tf, tf_keras

log = logging.getLogger(__name__)


def frozen_part(blocks, size: int, cut: int) -> tf_keras.Model:
    """uint8 images -> the output of block `cut` (exclusive), the trainer's frozen part."""
    image_in = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    x = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
    for block in blocks[:cut]:
        x = block(x, training=False)
    return tf_keras.Model(image_in, x, name="frozen_part")


def convert(model: tf_keras.Model, path: Path, num_blocks: int, extra: dict | None = None) -> Path:
    """Write `model` (uint8 image input) as a float32 TFLite model at `path`, with a summary beside
    it (output width, parameters, the backbone's block count, and `extra`) so that a trainer whose
    every block is frozen need not build the backbone in TensorFlow at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {"input_size": int(model.input_shape[1]), "output_shape": list(model.output_shape[1:]),
               "params": int(model.count_params()), "num_blocks": num_blocks, **(extra or {})}
    atomic_write_json(path.with_suffix(".json"), summary)
    atomic_write_bytes(path, tflite_bytes(model))  # last: the .tflite file is what marks it ready
    return path


def tflite_bytes(model: tf_keras.Model) -> bytes:
    """A Keras model as a float32 TFLite flatbuffer, taking its input's dtype (uint8 images or [0, 1] floats)."""
    spec = tf.TensorSpec((None, *model.input_shape[1:]), model.inputs[0].dtype)
    function = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()],
                                                           variables_only(model)).convert()


def variables_only(*models) -> tf.Module:
    """A module tracking only the models' variables. Converting and saving write what they are given as a
    SavedModel: given a Keras model, they trace every layer's call for Keras's own format (about 50 of the
    58 s that converting Lite0 took); given the variables alone, a few seconds."""
    holder = tf.Module()
    holder.weights = list({id(v): v for m in models for v in m.variables}.values())
    return holder
