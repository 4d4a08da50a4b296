"""The model store's folders and whether each is ready, damaged or missing, without loading TensorFlow (the
Home page and the CLI ask often; core.backbones.bundled fills the store)."""

from __future__ import annotations

from pathlib import Path

from core import paths
from core.backbones import lite0_shape as lite
from core.backbones.registry import DEFAULT_BACKBONE
from core.fileio import manifest_problems

WEIGHTS_NAME = "efficientnet_lite0.weights.h5"


def keras_dir() -> Path:
    return paths.models_dir() / DEFAULT_BACKBONE


def hub_dir() -> Path:
    return paths.models_dir() / "efficientnet_lite0_hub"


def status() -> dict[str, str]:
    """'ready', 'not prepared' or 'damaged: ...' for the Keras weights, the hub export and the TFLite copy."""

    def one(folder: Path) -> str:
        if not folder.exists():
            return "not prepared"
        problems = manifest_problems(folder)
        return "ready" if not problems else "damaged: " + "; ".join(problems)

    return {"keras": one(keras_dir()), "hub": one(hub_dir()),
            "tflite": _file_status(tflite_path()), "blocks_tflite": _file_status(blocks_tflite_path())}


def _file_status(path: Path) -> str:
    return "ready" if path.is_file() and path.with_suffix(".json").is_file() else "not prepared"


def blocks_tflite_path() -> Path:
    """Every block's pooled output in one TFLite file, for analysis (core.features.blocks)."""
    from core.backbones.tflite_run import blocks_path

    return blocks_path(DEFAULT_BACKBONE, lite.INPUT_SIZE)


def tflite_path() -> Path:
    """The frozen feature model for the default cut: the trainer's fast path."""
    from core.backbones.tflite_run import path_for

    return path_for(DEFAULT_BACKBONE, lite.INPUT_SIZE, lite.NUM_BLOCKS)
