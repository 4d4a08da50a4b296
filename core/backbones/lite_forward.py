"""The frozen part of the bundled backbone through TensorFlow Lite (XNNPACK on the CPU).

On this project's 2-core CPU, EfficientNet-Lite0's feature model ran at 116-146 images/s through
TFLite against 79-90 through TensorFlow at batch 32 in the benchmark runs, with the same float32
maths (feature vectors differ by at most 1.3e-5). Dynamic-range int8 weights were slower (55 against
97 images/s, measured once) and changed the vectors, so the file stays float32. Converting takes
about 20 s, so it is done once by `prepare` for the default cut (every block frozen, 224x224) and
kept in the model store; the trainer uses a converted file when one exists and TensorFlow otherwise.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import paths
from core.backbones.tf import tf, tf_keras
from core.fileio import atomic_write_bytes, atomic_write_json, read_json

BATCH = 32
log = logging.getLogger(__name__)


def path_for(backbone: str, size: int, cut: int) -> Path:
    return paths.models_dir() / "tflite" / f"{backbone}-{size}px-cut{cut}.tflite"


def frozen_part(blocks, size: int, cut: int) -> tf_keras.Model:
    """uint8 images -> the output of block `cut` (exclusive), the trainer's frozen part."""
    image_in = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    x = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
    for block in blocks[:cut]:
        x = block(x, training=False)
    return tf_keras.Model(image_in, x, name="frozen_part")


def convert(model: tf_keras.Model, path: Path, num_blocks: int) -> Path:
    """Write `model` (uint8 image input) as a float32 TFLite model at `path`, with a summary beside
    it (output width, parameters, the backbone's block count) so that a trainer whose every block is
    frozen need not build the backbone in TensorFlow at all."""
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8)
    function = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], model)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {"input_size": int(model.input_shape[1]), "output_shape": list(model.output_shape[1:]),
               "params": int(model.count_params()), "num_blocks": num_blocks}
    atomic_write_json(path.with_suffix(".json"), summary)
    atomic_write_bytes(path, converter.convert())  # last: the .tflite file is what marks it ready
    return path


class LiteForward:
    """Callable: uint8 images (n, h, w, 3) -> float32 outputs, in batches of BATCH."""

    def __init__(self, path: Path):
        with warnings.catch_warnings():  # tf.lite.Interpreter points to ai_edge_litert; it still works
            warnings.simplefilter("ignore")
            self.interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        detail = self.interpreter.get_input_details()[0]
        self.input, self.output = detail["index"], self.interpreter.get_output_details()[0]["index"]
        self.interpreter.resize_tensor_input(self.input, (BATCH, *detail["shape"][1:]))
        self.interpreter.allocate_tensors()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), BATCH):
            batch = images[i:i + BATCH]
            if len(batch) < BATCH:  # pad the last batch rather than re-allocating the interpreter
                batch = np.concatenate([batch, np.zeros((BATCH - len(batch), *batch.shape[1:]), batch.dtype)])
            self.interpreter.set_tensor(self.input, np.ascontiguousarray(batch, dtype=np.uint8))
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output)[:len(images) - i].copy())
        return np.concatenate(out) if out else np.zeros((0,), np.float32)


def forward_for(backbone_name: str, size: int, cut: int) -> LiteForward | None:
    """The converted frozen part if the model store has it (bundled backbone only), else None. Not on a
    GPU: there TensorFlow is the faster engine."""
    if backbone_name != "efficientnet_lite0" or cut == 0 or tf.config.list_physical_devices("GPU"):
        return None
    path = path_for(backbone_name, size, cut)
    if not path.is_file():
        return None
    try:
        return LiteForward(path)
    except (ValueError, RuntimeError) as exc:  # a damaged file: drop it, TensorFlow does the work
        log.warning("ignoring damaged %s (%s)", path, exc)
        path.unlink(missing_ok=True)
        return None


@dataclass(frozen=True)
class WholeBackbone:
    """Every block of the backbone as one converted forward: all a trainer with nothing to fine-tune needs."""
    forward: LiteForward
    input_size: int
    num_blocks: int
    feature_dim: int
    params: int


def whole_backbone(backbone_name: str, size: int | None, frozen_of) -> WholeBackbone | None:
    """The converted forward through every block, with its summary, or None (not converted, another
    backbone or size, some block to fine-tune, a GPU, a damaged file). frozen_of(num_blocks) is the
    number of frozen blocks the config asks for; it is checked before the interpreter is opened."""
    from core.backbones import efficientnet_lite as lite

    size = size or lite.INPUT_SIZE
    try:
        summary = read_json(path_for(backbone_name, size, lite.NUM_BLOCKS).with_suffix(".json"))
    except (OSError, ValueError):
        return None
    if (summary.get("num_blocks") != lite.NUM_BLOCKS or len(summary["output_shape"]) != 1
            or frozen_of(lite.NUM_BLOCKS) != lite.NUM_BLOCKS):
        return None
    forward = forward_for(backbone_name, size, lite.NUM_BLOCKS)
    if forward is None:
        return None
    return WholeBackbone(forward, size, lite.NUM_BLOCKS, int(summary["output_shape"][0]), int(summary["params"]))
