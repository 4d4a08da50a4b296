"""Running a converted TFLite file with the LiteRT interpreter (ai_edge_litert): the same XNNPACK kernels
as tf.lite's deprecated interpreter, the same outputs, and it loads in a fraction of a second without
TensorFlow, which is what lets a frozen run's batch prediction start at once (core.inference.batch).
Converting is core.backbones.tflite_convert's, and needs TensorFlow.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import paths
from core.backbones.lite_shape import arch_of
from core.backbones.registry import get_spec
from core.backbones.summary import BackboneSummary
from core.fileio import read_json

BATCH = 32
log = logging.getLogger(__name__)


def path_for(backbone: str, size: int, cut: int) -> Path:
    return paths.models_dir() / "tflite" / f"{backbone}-{size}px-cut{cut}.tflite"


@dataclass(frozen=True, kw_only=True)
class _Sized:
    """An interpreter allocated for one batch size, with its tensors' indices (looked up once: each details
    call builds a list of dicts)."""
    interpreter: Any  # ai_edge_litert's Interpreter (untyped)
    input_index: int
    output_index: int


class LiteForward:
    """Callable: uint8 images (n, h, w, 3) -> float32 outputs: whole batches of BATCH through one interpreter,
    the rest image by image through a second one (padding one image to a batch of 32 took 260 ms where one
    image takes about 10)."""

    def __init__(self, path: Path):
        # From bytes held here, not the path: an interpreter maps its file and reads the weights from the
        # mapping on every call, so a file rewritten in place would change a cached run's predictions.
        self._content = path.read_bytes()
        self._batch = self._interpreter(BATCH)
        self._single: _Sized | None = None

    def _interpreter(self, batch: int) -> _Sized:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=self._content, num_threads=os.cpu_count() or 1)
        detail = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(detail["index"], (batch, *detail["shape"][1:]))
        interpreter.allocate_tensors()
        return _Sized(
            interpreter=interpreter,
            input_index=detail["index"],
            output_index=interpreter.get_output_details()[0]["index"],
        )

    @staticmethod
    def _run(sized: _Sized, images: np.ndarray) -> np.ndarray:
        sized.interpreter.set_tensor(sized.input_index, np.ascontiguousarray(images, dtype=np.uint8))
        sized.interpreter.invoke()
        return sized.interpreter.get_tensor(sized.output_index).copy()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        whole = len(images) // BATCH * BATCH
        out = [self._run(self._batch, images[i:i + BATCH]) for i in range(0, whole, BATCH)]
        if whole < len(images):
            single = self._single = self._single or self._interpreter(1)
            out += [self._run(single, images[i:i + 1]) for i in range(whole, len(images))]
        return np.concatenate(out) if out else np.zeros((0,), np.float32)


def open_converted(path: Path) -> LiteForward | None:
    """The converted file at `path` as a forward; None where there is none, or where it is damaged (then it is
    dropped, so that `prepare` makes it again, and TensorFlow does the work meanwhile)."""
    if not path.is_file():
        return None
    try:
        return LiteForward(path)
    except (ValueError, RuntimeError) as exc:
        log.warning("ignoring damaged %s (%s)", path, exc)
        path.unlink(missing_ok=True)
        return None


def _whole_path(backbone: str, image_size: int | None) -> Path | None:
    if not get_spec(backbone).converted:
        return None
    return path_for(backbone, image_size or get_spec(backbone).input_size, arch_of(backbone).num_blocks)


def whole_converted(backbone: str, image_size: int | None) -> bool:
    """Whether `prepare` converted the backbone's whole forward for this size (a file check)."""
    path = _whole_path(backbone, image_size)
    return path is not None and path.is_file()


def whole_forward(backbone: str, image_size: int | None) -> LiteForward | None:
    """uint8 images -> the backbone's pooled feature vector, through every block, if `prepare` converted
    it for this size (bundled backbones only); None otherwise or where the file is damaged."""
    path = _whole_path(backbone, image_size)
    return open_converted(path) if path is not None else None


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is visible, asked of the driver rather than of TensorFlow (which takes seconds to
    load): then TensorFlow, not TFLite, runs the frozen part."""
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1")
    return not hidden and Path("/proc/driver/nvidia/version").exists()


def blocks_path(backbone: str, size: int) -> Path:
    """The converted pooled-blocks model of core.features.blocks."""
    return paths.models_dir() / "tflite" / f"{backbone}-{size}px-blocks.tflite"


def _usable(backbone_name: str, cut: int) -> bool:
    """Only bundled backbones are converted, and not on a GPU: there TensorFlow is the faster engine."""
    return get_spec(backbone_name).converted and cut > 0 and not gpu_present()


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
    if not _usable(backbone_name, 1):
        return None
    size = size or arch_of(backbone_name).input_size
    path = blocks_path(backbone_name, size)
    if not path.is_file():
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
    if not _usable(backbone_name, 1):
        return None
    arch = arch_of(backbone_name)
    size = size or arch.input_size
    path = path_for(backbone_name, size, arch.num_blocks)
    if not path.is_file():
        return None
    try:
        summary = read_json(path.with_suffix(".json"))
    except (OSError, ValueError):
        return None
    if summary.get("num_blocks") != arch.num_blocks or len(summary.get("output_shape", ())) != 1:
        return None
    return BackboneSummary(
        name=backbone_name,
        input_size=size,
        num_blocks=arch.num_blocks,
        feature_dim=int(summary["output_shape"][0]),
        params=int(summary["params"]),
        layered=True,
        converted_cuts=frozenset({arch.num_blocks}),
    )
