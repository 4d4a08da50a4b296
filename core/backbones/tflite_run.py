"""Running a converted TFLite file with the LiteRT interpreter (ai_edge_litert): the same XNNPACK kernels
as tf.lite's deprecated interpreter, the same outputs, and it loads in a fraction of a second without
TensorFlow, which is what lets a frozen run's batch prediction start at once (core.inference.batch).
Converting is core.backbones.tflite_convert's, and needs TensorFlow.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from core import paths
from core.backbones.registry import DEFAULT_BACKBONE, get_spec

BATCH = 32
log = logging.getLogger(__name__)


def path_for(backbone: str, size: int, cut: int) -> Path:
    return paths.models_dir() / "tflite" / f"{backbone}-{size}px-cut{cut}.tflite"


class LiteForward:
    """Callable: uint8 images (n, h, w, 3) -> float32 outputs, in batches of BATCH."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        # From bytes held here, not the path: an interpreter maps its file and reads the weights from the
        # mapping on every call, so a file rewritten in place would change a cached run's predictions.
        self._content = path.read_bytes()
        self.interpreter = Interpreter(model_content=self._content, num_threads=os.cpu_count() or 1)
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


def whole_forward(backbone: str, image_size: int | None) -> LiteForward | None:
    """uint8 images -> the backbone's pooled feature vector, through every block, if `prepare` converted
    it for this size (the bundled backbone only); None otherwise or where the file is damaged."""
    from core.backbones import lite0_shape as lite

    if backbone != DEFAULT_BACKBONE:
        return None
    return open_converted(path_for(backbone, image_size or get_spec(backbone).input_size, lite.NUM_BLOCKS))
