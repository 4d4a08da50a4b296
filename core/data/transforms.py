"""Keras' image transform matrices in numpy: flip, rotation, zoom and shift composed into one projective
transform per image, the same rows as core.data.geometry.compose computes in TensorFlow (Keras'
get_rotation_matrix, get_zoom_matrix and get_translation_matrix, tf_keras/src/layers/preprocessing/
image_preprocessing.py), so that augmenting a frozen run's images needs no TensorFlow."""

from __future__ import annotations

import numpy as np


def _rows(*columns) -> np.ndarray:
    """(n, 8) transform rows [a0, a1, a2, b0, b1, b2, c0, c1] from eight (n,) columns."""
    return np.stack(np.broadcast_arrays(*columns), axis=1).astype(np.float64)


def _square(rows: np.ndarray) -> np.ndarray:
    """(n, 8) rows -> (n, 3, 3) matrices mapping output points to input points."""
    return np.concatenate([rows, np.ones((len(rows), 1))], axis=1).reshape(-1, 3, 3)


def compose(flips: np.ndarray, angles: np.ndarray, zooms: np.ndarray, shifts: np.ndarray, height: float,
            width: float) -> np.ndarray:
    """(n, 8) float32 transforms: horizontal flip where flips is true, then rotation (radians), zoom
    ([zx, zy]) and shift ([dx, dy] in pixels), in the order Keras' layers apply them one after another."""
    zero, one = np.zeros(len(angles)), np.ones(len(angles))
    sign = np.where(flips, -1.0, 1.0)
    flip = _rows(sign, zero, (1.0 - sign) / 2.0 * (width - 1.0), zero, one, zero, zero, zero)
    cos, sin = np.cos(angles.astype(np.float64)), np.sin(angles.astype(np.float64))
    rotation = _rows(cos, -sin, ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0,
                     sin, cos, ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0, zero, zero)
    zx, zy = zooms[:, 0].astype(np.float64), zooms[:, 1].astype(np.float64)
    zoom = _rows(zx, zero, (width - 1.0) / 2.0 * (1.0 - zx), zero, zy, (height - 1.0) / 2.0 * (1.0 - zy),
                 zero, zero)
    shift = _rows(one, zero, -shifts[:, 0], zero, one, -shifts[:, 1], zero, zero)
    # Each layer's matrix maps its output to its input, so the first layer's matrix comes first.
    m = _square(flip) @ _square(rotation) @ _square(zoom) @ _square(shift)
    m = m / m[:, 2:3, 2:3]
    return m.reshape(-1, 9)[:, :8].astype(np.float32)
