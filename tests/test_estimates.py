"""Estimates come from this machine's own measured rates and say when they are only a first guess (issue 43:
health said "a second per 50 images" where 1,797 took 149 s; the sweep said "about 1 min" for 141 s)."""

import pytest

from core import rates
from core.runs import sweeps
from core.training.config import TrainConfig
from core.training.plan import nominal_seconds


@pytest.fixture
def own_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))
    return tmp_path


def test_an_estimate_is_a_first_guess_until_this_machine_measured_one(own_home):
    guess = rates.estimate("health, vectors computed", units=1797, guess_per_unit=0.1)
    assert guess.measured == 0 and guess.text() == "roughly 3 min (a first guess: nothing measured on this machine yet)"
    for seconds in (149.0, 160.0, 140.0):
        rates.record("health, vectors computed", seconds=seconds, units=1797)
    measured = rates.estimate("health, vectors computed", units=3594, guess_per_unit=0.1)
    assert measured.seconds == pytest.approx(298.0) and measured.measured == 3
    assert measured.text() == "about 5 min (from 3 measured on this machine)"
    for _ in range(rates.KEEP + 3):
        rates.record("health, vectors computed", seconds=1.0, units=1)
    assert rates.estimate("health, vectors computed", units=1, guess_per_unit=0.1).measured == rates.KEEP


def test_a_sweep_is_estimated_at_the_pace_of_the_runs_finished_here(own_home):
    points = [TrainConfig(dataset="digits", per_class=n) for n in (20, 50)]
    images = [200, 500]
    nominal = sum(nominal_seconds(p, n) for p, n in zip(points, images, strict=False))
    assert sweeps.estimate(points, images).measured == 0
    rates.record("run", seconds=141.0, units=nominal / 2)  # runs here took twice their nominal work
    assert sweeps.estimate(points, images).seconds == pytest.approx(282.0)


def test_health_records_its_pace(own_home, color_folder, prepared, empty_feature_store):
    from core.data.scan import scan_folder
    from core.health import HEALTH_AGAIN, HEALTH_FIRST, check_health, estimate

    dataset = scan_folder(color_folder)
    check_health(dataset, "efficientnet_lite0")
    check_health(dataset, "efficientnet_lite0")
    assert estimate(len(dataset), first_time=True).measured == 1
    assert estimate(len(dataset), first_time=False).measured == 1
    assert set(rates._known()) == {HEALTH_FIRST, HEALTH_AGAIN}
