"""How fast this machine did things before: seconds per unit of work (an image, a conversion, an estimated second
of a run), kept per machine in the cache folder beside the speed figures, so that an estimate a page shows comes
from what was measured here, and says when nothing was measured yet."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from core import paths
from core.fileio import atomic_write_json, read_json

KEEP = 7  # the latest measurements of each kind; the estimate is their median


@dataclass(frozen=True, kw_only=True)
class Estimate:
    seconds: float
    measured: int  # how many past jobs of this kind on this machine it rests on; 0: a first guess

    def text(self) -> str:
        """"about 40 s (from 3 measured here)" or "roughly 2 min (a first guess: nothing measured here yet)"."""
        amount = f"{self.seconds:.0f} s" if self.seconds < 90 else f"{self.seconds / 60:.0f} min"
        if self.measured:
            return f"about {amount} (from {self.measured} measured on this machine)"
        return f"roughly {amount} (a first guess: nothing measured on this machine yet)"


def _path():
    return paths.cache_dir() / "rates.json"


def _known() -> dict:
    try:
        known = read_json(_path())
        return known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        return {}


def record(kind: str, *, seconds: float, units: float) -> None:
    """Keep one measurement: `seconds` for `units` of work of this kind."""
    if units <= 0 or seconds <= 0:
        return
    known = _known()
    known[kind] = ([*known.get(kind, []), seconds / units])[-KEEP:]
    atomic_write_json(_path(), known)


def estimate(kind: str, *, units: float, guess_per_unit: float) -> Estimate:
    """Seconds for `units` of work of this kind: the median of this machine's measurements, else the guess."""
    rates = [r for r in _known().get(kind, []) if isinstance(r, (int, float))]
    per_unit = statistics.median(rates) if rates else guess_per_unit
    return Estimate(seconds=per_unit * units, measured=len(rates))
