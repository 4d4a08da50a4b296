"""Sweeps: a grid of training runs (sample sizes x frozen depths x augmentation x heads x backbones, with
one seed or repeated over several), queued through the executor (this machine's workers or a Ray cluster),
recorded on disk so a half-finished sweep resumes.

runs/.sweeps/<id>.json holds the grid and, per grid point, the run that trained it. resume()
submits a run for every point whose run is missing, failed or cancelled; finished, queued and
running points are left alone, so nothing finished is ever trained twice.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

from core import rates
from core.backbones.depth import ALL
from core.data.augment import AugmentConfig
from core.errors import RunError, StudioError
from core.fileio import atomic_write_json, read_json
from core.rates import Estimate
from core.runs import executors, jobs
from core.runs.store import Run, RunState, RunStore
from core.training.config import TrainConfig
from core.training.plan import nominal_seconds


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    base: TrainConfig
    per_class: tuple = (20, 50)
    frozen_blocks: tuple = (ALL,)
    augment: tuple = (False,)
    heads: tuple = ("dense",)
    backbones: tuple = ()  # empty: the base config's backbone
    seeds: tuple = ()  # empty: the base config's seed; several repeat every point (sample, split, init)

    def points(self) -> list[TrainConfig]:
        """The grid, skipping combinations a head cannot do (scikit-learn heads need frozen features)."""
        configs = []
        for backbone, n, frozen, aug, head, seed in itertools.product(
                self.backbones or (self.base.backbone,), self.per_class, self.frozen_blocks, self.augment,
                self.heads, self.seeds or (self.base.seed,)):
            if head != "dense" and (frozen != ALL or aug):
                continue
            configs.append(self.base.with_(backbone=backbone, per_class=n, fraction=None, frozen_blocks=frozen,
                                           augment=AugmentConfig.standard() if aug else AugmentConfig(), head=head,
                                           seed=seed))
        return configs

    def to_json(self) -> dict:
        return {"base": self.base.to_json(), **{f.name: list(getattr(self, f.name)) for f in fields(self)
                                                 if f.name != "base"}}

    @staticmethod
    def from_json(data: dict) -> SweepSpec:
        return SweepSpec(base=TrainConfig.from_json(data["base"]),
                         **{k: tuple(v) for k, v in data.items() if k != "base"})


def estimate(points: list[TrainConfig], images: list[int]) -> Estimate:
    """How long the runs take here, one after the other: their nominal work (core.training.plan.nominal_seconds)
    at the pace this machine's finished runs kept (core.rates; a first guess before any)."""
    return rates.estimate("run", units=sum(nominal_seconds(p, n) for p, n in zip(points, images, strict=True)),
                          guess_per_unit=1.0)


def _dir(store: RunStore) -> Path:
    return store.root / ".sweeps"


def _path(store: RunStore, sweep_id: str) -> Path:
    if not sweep_id or "/" in sweep_id or sweep_id.startswith("."):
        raise RunError(f"{sweep_id!r} is not a sweep id.")
    return _dir(store) / f"{sweep_id}.json"


@dataclass(frozen=True, kw_only=True)
class Sweep:
    store: RunStore  # where its runs are
    id: str
    spec: SweepSpec
    run_ids: tuple  # per grid point: a run id or None
    created: float
    name: str

    def runs(self) -> list[Run | None]:
        out = []
        for run_id in self.run_ids:
            try:
                out.append(self.store.load(run_id) if run_id else None)
            except StudioError:
                out.append(None)
        return out

    def progress(self) -> dict:
        states = [r.state if r else "not started" for r in self.runs()]
        return {state: states.count(state) for state in sorted(set(states))}

    @property
    def label(self) -> str:
        """How a picker names it: its given name, else when it started; and how many runs it has."""
        title = self.name if self.name != self.id else time.strftime("Sweep of %d %b, %H:%M",
                                                                     time.localtime(self.created))
        return f"{title} ({len(self.run_ids)} runs)"

    @property
    def done(self) -> bool:
        return all(r is not None and r.state == RunState.COMPLETED for r in self.runs())

    @property
    def active(self) -> bool:
        """Some run of the sweep is queued or training."""
        return any(r is not None and r.state.active for r in self.runs())


def _save(store: RunStore, sweep: Sweep) -> None:
    atomic_write_json(_path(store, sweep.id), {"id": sweep.id, "name": sweep.name, "created": sweep.created,
                                        "spec": sweep.spec.to_json(), "run_ids": list(sweep.run_ids)})


def load_sweep(store: RunStore, sweep_id: str) -> Sweep:
    path = _path(store, sweep_id)
    if not path.is_file():
        raise RunError(f"No sweep {sweep_id!r}.")
    data = read_json(path)
    return Sweep(
        store=store,
        id=data["id"],
        spec=SweepSpec.from_json(data["spec"]),
        run_ids=tuple(data["run_ids"]),
        created=data["created"],
        name=data.get("name", data["id"]),
    )


def list_sweeps(store: RunStore) -> list[Sweep]:
    if not _dir(store).is_dir():
        return []
    sweeps = [load_sweep(store, p.stem) for p in _dir(store).glob("*.json")]
    return sorted(sweeps, key=lambda s: s.created, reverse=True)


def create_sweep(
    store: RunStore, spec: SweepSpec, name: str = "", *, executor: executors.Executor | None = None
) -> Sweep:
    points = spec.points()
    if not points:
        raise StudioError("This sweep has no runs: every combination was invalid (scikit-learn heads need every "
                          "block frozen and no augmentation).")
    for config in points:
        config.validate()
    sweep_id = "sweep-" + time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    sweep = Sweep(
        store=store,
        id=sweep_id, spec=spec, run_ids=tuple([None] * len(points)), created=time.time(), name=name or sweep_id
    )
    _save(store, sweep)
    return resume(store, sweep.id, executor=executor)


def resume(store: RunStore, sweep_id: str, *, executor: executors.Executor | None = None) -> Sweep:
    """Queue every grid point without a finished, queued or running run on the executor (default: the
    current one); return the updated sweep."""
    executor = executor or executors.current(store)
    sweep = load_sweep(store, sweep_id)
    run_ids = list(sweep.run_ids)
    for i, (config, run) in enumerate(zip(sweep.spec.points(), sweep.runs(), strict=True)):
        if run is None or run.state in (RunState.FAILED, RunState.CANCELLED, RunState.DAMAGED):
            run_ids[i] = executor.submit(config)
            sweep = replace(sweep, run_ids=tuple(run_ids))
            _save(store, sweep)  # after each submission, so a crash here loses nothing
    executor.ensure()
    return sweep


def cancel_sweep(store: RunStore, sweep_id: str) -> None:
    for run in load_sweep(store, sweep_id).runs():
        if run is not None and run.state.active:
            jobs.cancel(store, run.id)
