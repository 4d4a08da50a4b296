"""The model store's folders and whether each is ready, damaged or missing, without loading TensorFlow (the
Home page and the CLI ask often; core.backbones.bundled fills the store). Each bundled backbone has its Keras
weights and two converted TFLite files (its whole frozen forward, every block's pooled output); the default
one also has its TF Hub-format export."""

from __future__ import annotations

from pathlib import Path

from core import paths
from core.backbones.lite_shape import arch_of
from core.backbones.registry import DEFAULT_BACKBONE
from core.fileio import manifest_problems


def weights_name(name: str = DEFAULT_BACKBONE) -> str:
    return f"{name}.weights.h5"


WEIGHTS_NAME = weights_name()


def keras_dir(name: str = DEFAULT_BACKBONE) -> Path:
    return paths.models_dir() / name


def hub_dir() -> Path:
    return paths.models_dir() / "efficientnet_lite0_hub"


def status(name: str = DEFAULT_BACKBONE, parts: tuple[str, ...] | None = None) -> dict[str, str]:
    """'ready', 'not prepared' or 'damaged: ...' for the Keras weights, the hub export (the default backbone's
    only) and the TFLite copies; only `parts` where given (a folder's check hashes its files)."""
    checks = {"keras": lambda: _folder_status(keras_dir(name)), "hub": lambda: _folder_status(hub_dir()),
              "tflite": lambda: _file_status(tflite_path(name)),
              "blocks_tflite": lambda: _file_status(blocks_tflite_path(name))}
    if name != DEFAULT_BACKBONE:
        del checks["hub"]
    return {part: check() for part, check in checks.items() if parts is None or part in parts}


TRAINING_PARTS = ("keras", "tflite")  # what a run needs; the pooled-blocks file serves the analysis


def ready(name: str = DEFAULT_BACKBONE, parts: tuple[str, ...] | None = None) -> bool:
    """Whether every part (or the given ones) is ready."""
    return all(state == "ready" for state in status(name, parts).values())


def _folder_status(folder: Path) -> str:
    if not folder.exists():
        return "not prepared"
    problems = manifest_problems(folder)
    return "ready" if not problems else "damaged: " + "; ".join(problems)


def _file_status(path: Path) -> str:
    return "ready" if path.is_file() and path.with_suffix(".json").is_file() else "not prepared"


def blocks_tflite_path(name: str = DEFAULT_BACKBONE) -> Path:
    """Every block's pooled output in one TFLite file, for analysis (core.features.blocks)."""
    from core.backbones.tflite_run import blocks_path

    return blocks_path(name, arch_of(name).input_size)


def tflite_path(name: str = DEFAULT_BACKBONE) -> Path:
    """The frozen feature model through every block: the trainer's fast path."""
    from core.backbones.tflite_run import path_for

    arch = arch_of(name)
    return path_for(name, arch.input_size, arch.num_blocks)
