"""Random augmentation: Keras preprocessing layers inside a model, OpenCV for uint8 arrays outside
one, and previews."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from core.data.transforms import compose


@dataclass(frozen=True, kw_only=True)
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

    def words(self) -> str:
        """The changes as a person reads them: "off", or "random flips, rotations up to 18°, zoom up to 10%"."""
        if not self.enabled:
            return "off"
        parts = ["random left-right flips"] if self.flip else []
        parts += [f"{name} up to {text}" for name, value, text in (
            ("rotations", self.rotation, f"{self.rotation * 360:.0f}°"), ("zoom", self.zoom, f"{self.zoom:.0%}"),
            ("shifts", self.translation, f"{self.translation:.0%}"), ("contrast changes", self.contrast,
                                                                       f"{self.contrast:.0%}")) if value > 0]
        return ", ".join(parts)

    @staticmethod
    def standard() -> AugmentConfig:
        """A sensible default when a user just switches augmentation on."""
        return AugmentConfig(flip=True, rotation=0.05, zoom=0.1, translation=0.1, contrast=0.1)


def build_augmenter(config: AugmentConfig, seed: int = 0):
    """A tf_keras Sequential acting on float images in [0, 1]; None if disabled. Flip, rotation, zoom
    and shift are one resampling (core.data.geometry), contrast is Keras' RandomContrast."""
    if not config.enabled:
        return None
    from core.data.geometry import RandomGeometry
    from core.tf import tf_keras

    stack = []
    if config.flip or config.rotation > 0 or config.zoom > 0 or config.translation > 0:
        stack.append(RandomGeometry(config.flip, config.rotation, config.zoom, config.translation, seed=seed,
                                    name="random_geometry"))
    if config.contrast > 0:
        stack.append(tf_keras.layers.RandomContrast(config.contrast, seed=seed + 4))
    return tf_keras.Sequential(stack, name="augmentation")


class ArrayAugmenter:
    """uint8 image batches -> randomly changed uint8 batches, outside any model: the per-epoch images of a
    run whose every block is frozen. The same changes as build_augmenter: Keras' own geometry matrices
    (core.data.transforms.compose, in numpy), one bilinear resample with reflected edges (cv2.BORDER_REFLECT is
    Keras' fill_mode="reflect"; pixels match TensorFlow's resample within 1/255), then contrast as
    Keras computes it, except that each image draws its own factor where Keras draws one per batch.
    Much faster than TensorFlow's resample on a CPU (BENCHMARKS.md has the figures)."""

    def __init__(self, config: AugmentConfig, seed: int = 0):
        self.config, self.rng = config, np.random.default_rng(seed)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.apply(images, *self.draw(len(images), *images.shape[1:3]))

    def draw(self, n: int, height: int, width: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """n random changes: (n, 8) Keras transform rows (or None) and (n,) contrast factors (or None)."""
        c, transforms, factors = self.config, None, None
        if c.flip or c.rotation > 0 or c.zoom > 0 or c.translation > 0:
            turn = c.rotation * 2.0 * np.pi
            flips = (self.rng.random(n) < 0.5) & c.flip
            angles = self.rng.uniform(-turn, turn, n).astype(np.float32)
            zooms = np.repeat(self.rng.uniform(1.0 - c.zoom, 1.0 + c.zoom, (n, 1)), 2, axis=1).astype(np.float32)
            shifts = (self.rng.uniform(-c.translation, c.translation, (n, 2)) * (width, height)).astype(np.float32)
            transforms = compose(flips, angles, zooms, shifts, float(height), float(width))
        if c.contrast > 0:
            factors = self.rng.uniform(1.0 - c.contrast, 1.0 + c.contrast, n).astype(np.float32)
        return transforms, factors

    @staticmethod
    def apply(images: np.ndarray, transforms: np.ndarray | None, factors: np.ndarray | None) -> np.ndarray:
        import cv2

        out = images.copy()
        height, width = images.shape[1:3]
        if transforms is not None:
            for image, row, target in zip(images, transforms, out, strict=True):
                matrix = np.append(row, 1.0).reshape(3, 3).astype(np.float64)
                cv2.warpPerspective(image, matrix, (width, height), dst=target, borderMode=cv2.BORDER_REFLECT,
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        if factors is not None:  # (x - mean) * factor + mean, the mean per image and channel
            for image, factor in zip(out, factors, strict=True):
                mean = np.array(cv2.mean(image)[:image.shape[-1]])
                matrix = np.hstack([np.eye(len(mean)) * factor, ((1.0 - factor) * mean)[:, None]])
                cv2.transform(image, matrix, dst=image)  # rounds and saturates to 0..255
        return out


def previews(image_uint8: np.ndarray, config: AugmentConfig, n: int = 6, seed: int = 0) -> list[np.ndarray]:
    """n augmented versions of one image, as uint8 arrays of the same shape."""
    return list(ArrayAugmenter(config, seed)(np.repeat(image_uint8[None], n, axis=0)))
