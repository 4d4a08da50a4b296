"""Random augmentation with Keras preprocessing layers, and previews of it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = False  # random horizontal flip
    rotation: float = 0.0  # max rotation as a fraction of a full turn (0.1 = +-36 degrees)
    zoom: float = 0.0  # max zoom in or out, as a fraction
    translation: float = 0.0  # max shift, as a fraction of width and height
    contrast: float = 0.0  # max contrast change, as a fraction

    @property
    def enabled(self) -> bool:
        return self.flip or any(v > 0 for v in (self.rotation, self.zoom, self.translation, self.contrast))

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def standard() -> "AugmentConfig":
        """A sensible default when a user just switches augmentation on."""
        return AugmentConfig(flip=True, rotation=0.05, zoom=0.1, translation=0.1, contrast=0.1)


def build_augmenter(config: AugmentConfig, seed: int = 0):
    """A tf_keras Sequential acting on float images in [0, 1]; None if disabled. Flip, rotation, zoom
    and shift are one resampling (core.data.geometry), contrast is Keras' RandomContrast."""
    if not config.enabled:
        return None
    from core.backbones.tf import tf_keras
    from core.data.geometry import RandomGeometry

    stack = []
    if config.flip or config.rotation > 0 or config.zoom > 0 or config.translation > 0:
        stack.append(RandomGeometry(config.flip, config.rotation, config.zoom, config.translation, seed=seed,
                                    name="random_geometry"))
    if config.contrast > 0:
        stack.append(tf_keras.layers.RandomContrast(config.contrast, seed=seed + 4))
    return tf_keras.Sequential(stack, name="augmentation")


def previews(image_uint8: np.ndarray, config: AugmentConfig, n: int = 6, seed: int = 0) -> list[np.ndarray]:
    """n augmented versions of one image, as uint8 arrays of the same shape."""
    augmenter = build_augmenter(config, seed)
    if augmenter is None:
        return [image_uint8.copy() for _ in range(n)]
    batch = np.repeat(image_uint8[None].astype(np.float32) / 255.0, n, axis=0)
    out = augmenter(batch, training=True).numpy()
    return [np.clip(o * 255.0, 0, 255).round().astype(np.uint8) for o in out]
