"""The frozen part of the bundled backbone through TensorFlow Lite (XNNPACK on the CPU).

On a laptop CPU the TFLite forward is faster than TensorFlow's with the same float32 maths
(BENCHMARKS.md has the rates and the differences); int8 weights were slower and changed the
vectors, so the file stays float32. Converting takes a while, so it is done once by `prepare` for
the default cut (every block frozen) and kept in the model store; the trainer uses a converted file
when one exists and TensorFlow otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core import paths
from core.backbones.registry import DEFAULT_BACKBONE
from core.backbones.summary import BackboneSummary
from core.backbones.tflite_run import LiteForward, open_converted, path_for
from core.fileio import atomic_write_bytes, atomic_write_json, read_json
from core.tf import tf, tf_keras

log = logging.getLogger(__name__)


def frozen_part(blocks, size: int, cut: int) -> tf_keras.Model:
    """uint8 images -> the output of block `cut` (exclusive), the trainer's frozen part."""
    image_in = tf_keras.Input((size, size, 3), dtype="uint8", name="image")
    x = tf_keras.layers.Rescaling(1.0 / 255.0, name="to_unit_range")(image_in)
    for block in blocks[:cut]:
        x = block(x, training=False)
    return tf_keras.Model(image_in, x, name="frozen_part")


def blocks_path(backbone: str, size: int) -> Path:
    """The converted pooled-blocks model of core.features.blocks."""
    return paths.models_dir() / "tflite" / f"{backbone}-{size}px-blocks.tflite"


def convert(model: tf_keras.Model, path: Path, num_blocks: int, extra: dict | None = None) -> Path:
    """Write `model` (uint8 image input) as a float32 TFLite model at `path`, with a summary beside
    it (output width, parameters, the backbone's block count, and `extra`) so that a trainer whose
    every block is frozen need not build the backbone in TensorFlow at all."""
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8)
    function = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], model)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {"input_size": int(model.input_shape[1]), "output_shape": list(model.output_shape[1:]),
               "params": int(model.count_params()), "num_blocks": num_blocks, **(extra or {})}
    atomic_write_json(path.with_suffix(".json"), summary)
    atomic_write_bytes(path, converter.convert())  # last: the .tflite file is what marks it ready
    return path


def _usable(backbone_name: str, cut: int) -> bool:
    """Only the bundled backbone is converted, and not on a GPU: there TensorFlow is the faster engine."""
    return backbone_name == DEFAULT_BACKBONE and cut > 0 and not tf.config.list_physical_devices("GPU")


def converted_cuts(backbone_name: str, size: int, num_blocks: int) -> frozenset[int]:
    """The cuts whose converted frozen part is on disk (a file check; forward_for opens one)."""
    if not _usable(backbone_name, 1):
        return frozenset()
    return frozenset(cut for cut in range(1, num_blocks + 1) if path_for(backbone_name, size, cut).is_file())


def forward_for(backbone_name: str, size: int, cut: int) -> LiteForward | None:
    """The converted frozen part if the model store has it, else None."""
    if not _usable(backbone_name, cut):
        return None
    return open_converted(path_for(backbone_name, size, cut))


def blocks_forward(backbone_name: str, size: int | None) -> tuple[LiteForward, dict, int] | None:
    """(the converted pooled-blocks forward, its layout as written at conversion, input size), or None
    where there is no such file."""
    from core.backbones import efficientnet_lite as lite

    size = size or lite.INPUT_SIZE
    path = blocks_path(backbone_name, size)
    if not _usable(backbone_name, 1) or not path.is_file():
        return None
    try:
        layout = read_json(path.with_suffix(".json"))["layout"]
        return LiteForward(path), layout, size
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # damaged: TensorFlow does the work
        log.warning("ignoring damaged %s (%s)", path, exc)
        path.unlink(missing_ok=True)
        return None


def whole_summary(backbone_name: str, size: int | None) -> BackboneSummary | None:
    """The backbone as the converted forward through every block describes it, without building it
    in TensorFlow (seconds); None where there is no such file (another backbone or size, a GPU)."""
    from core.backbones import efficientnet_lite as lite

    size = size or lite.INPUT_SIZE
    path = path_for(backbone_name, size, lite.NUM_BLOCKS)
    if not _usable(backbone_name, lite.NUM_BLOCKS) or not path.is_file():
        return None
    try:
        summary = read_json(path.with_suffix(".json"))
    except (OSError, ValueError):
        return None
    if summary.get("num_blocks") != lite.NUM_BLOCKS or len(summary.get("output_shape", ())) != 1:
        return None
    return BackboneSummary(backbone_name, size, lite.NUM_BLOCKS, int(summary["output_shape"][0]),
                           int(summary["params"]), layered=True, converted_cuts=frozenset({lite.NUM_BLOCKS}))
