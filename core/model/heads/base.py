"""What every head shares: the softmax, the names its weights go under, and temperature scaling."""

from __future__ import annotations

import numpy as np

PREFIX = "classifier/"
TEMPERATURE_KEY = f"{PREFIX}temperature"


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Calibrated:
    """Temperature scaling (core.model.calibration), fitted after training: every head's scores are divided by
    `temperature` before its softmax, in numpy and in its Keras layer alike. Saved beside the weights."""

    temperature = 1.0

    def calibrate(self, temperature: float) -> None:
        self.temperature = float(temperature)

    def temperature_weights(self) -> dict[str, np.ndarray]:
        return {TEMPERATURE_KEY: np.array(self.temperature)}

    def load_temperature(self, weights: dict[str, np.ndarray]) -> None:
        """A run trained before calibration existed has no temperature: 1."""
        self.calibrate(float(weights.get(TEMPERATURE_KEY, 1.0)))
