"""A saturating power law through the data-size curve, and what it forecasts for more images.

accuracy(n) = a - b * n^(-c): learning curves of classifiers flatten towards an asymptote a (Hestness
et al. 2017, "Deep learning scaling is predictable, empirically"). The interval comes from a bootstrap
over the random draws at each size: the fit is repeated on resampled draws and the middle 95% of its
forecasts is kept. It is an estimate: the law is assumed, not known.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 200
MIN_SIZES = 3  # a three-parameter law needs at least three sizes


def power_law(n, a, b, c):
    return a - b * np.power(n, -c)


@dataclass(frozen=True, kw_only=True)
class Fit:
    a: float
    b: float
    c: float

    def __call__(self, n) -> np.ndarray:
        return np.clip(power_law(np.asarray(n, float), self.a, self.b, self.c), 0.0, 1.0)


@dataclass(frozen=True, kw_only=True)
class Forecast:
    per_class: int
    accuracy: float
    low: float
    high: float

    def to_json(self) -> dict:
        return {"per_class": self.per_class, "accuracy": round(self.accuracy, 4), "low": round(self.low, 4),
                "high": round(self.high, 4)}


def fit(sizes: np.ndarray, means: np.ndarray) -> Fit | None:
    """Least squares, with a at most 1 and b, c positive; None when the fit does not converge."""
    from scipy.optimize import curve_fit

    start = (min(1.0, float(means.max()) + 0.02), max(1e-3, float(means.max() - means.min())), 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(power_law, sizes, means, p0=start, bounds=([0, 0, 0.01], [1, 2, 3]), maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    a, b, c = (float(p) for p in params)
    return Fit(a=a, b=b, c=c)


def forecast(scores: dict[int, list[float]], targets: list[int], seed: int = 0) -> tuple[Fit | None, list[Forecast]]:
    """The fit on the mean accuracy per size, and a forecast with a bootstrap interval at each target."""
    sizes = np.array(sorted(scores), float)
    if len(sizes) < MIN_SIZES:
        return None, []
    draws = [np.array(scores[int(n)]) for n in sizes]
    best = fit(sizes, np.array([d.mean() for d in draws]))
    if best is None:
        return None, []
    rng = np.random.default_rng(seed)
    predictions = []
    for _ in range(BOOTSTRAP):
        means = np.array([rng.choice(d, len(d)).mean() for d in draws])
        again = fit(sizes, means)
        if again is not None:
            predictions.append(again(targets))
    spread = np.array(predictions) if predictions else best(targets)[None, :]
    low, high = np.percentile(spread, 2.5, axis=0), np.percentile(spread, 97.5, axis=0)
    point = best(targets)
    return best, [Forecast(per_class=int(t), accuracy=float(p), low=float(min(lo, p)), high=float(max(hi, p)))
                  for t, p, lo, hi in zip(targets, point, low, high, strict=True)]
