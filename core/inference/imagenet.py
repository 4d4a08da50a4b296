"""Top-k ImageNet predictions from the bundled classifier (a sanity check of the weights)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.paths import ASSETS_DIR


@lru_cache(maxsize=1)
def class_names() -> list[str]:
    return (ASSETS_DIR / "imagenet_classes.txt").read_text(encoding="utf-8").splitlines()


def top_k(classifier, images_uint8: np.ndarray, k: int = 5) -> list[list[tuple[int, str, float]]]:
    """For each image: [(class index, name, probability), ...] best first."""
    probs = classifier.predict(images_uint8.astype(np.float32) / 255.0, verbose=0)
    names = class_names()
    return [[(int(i), names[i], float(p[i])) for i in np.argsort(-p)[:k]] for p in probs]
