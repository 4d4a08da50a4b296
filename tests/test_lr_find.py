"""The learning-rate finder: its suggestion on a planted loss curve, and real runs of both phases."""

import json

import numpy as np
import pytest

from core.data.sampling import sample, split
from core.data.scan import scan_folder
from core.errors import TrainingError
from core.training import lr_find
from core.training.config import TrainConfig
from tests.helpers import cli


def planted(rate: float, i: int) -> float:
    """A loss that falls fastest near 1e-3, is lowest at 1e-2 and explodes above 1e-1."""
    x = np.log10(rate)
    return float(2.0 - 1.5 / (1 + np.exp(-3 * (x + 3))) + (np.exp(4 * (x + 1)) if x > -2 else 0.0))


def test_the_suggestion_on_a_planted_curve_and_the_stop_at_divergence():
    rates, losses = lr_find.ramp(planted, 200, 1e-6, 10.0)
    assert rates[-1] < 10.0  # stopped once the loss had exploded, before the end of the range
    suggested, steepest = lr_find.suggest(rates, losses)
    low = rates[int(np.argmin(losses))]
    assert 3e-3 < low < 5e-2 and suggested == pytest.approx(low / 10)
    assert 5e-4 < steepest < 2e-3  # the sigmoid falls fastest at 1e-3


def test_both_phases_on_real_images(color_folder):
    parts = split(sample(scan_folder(color_folder), per_class=10).items, 0.3, 0.0, 0)
    config = TrainConfig(dataset=str(color_folder), per_class=10, epochs=2, batch_size=8)
    head = lr_find.find_learning_rate(config, parts, "head", steps=40)
    assert head.phase == "head" and len(head.rates) >= 3 and np.all(np.diff(head.rates) > 0)
    assert min(head.losses) < head.losses[0]  # somewhere along the ramp the head learns
    assert head.rates[0] <= head.suggested <= head.rates[-1]
    with pytest.raises(TrainingError, match="no fine-tuning phase"):
        lr_find.find_learning_rate(config, parts, "fine-tune", steps=10)
    fine = lr_find.find_learning_rate(config.with_(frozen_blocks=16), parts, "fine-tune", steps=30)
    assert fine.phase == "fine-tune" and fine.rates[0] == pytest.approx(lr_find.RANGES["fine-tune"][0])
    assert len(fine.rates) >= 3 and all(np.isfinite(fine.losses))


def test_lr_find_command_prints_one_json_line(color_folder):
    out = cli("lr-find", "--data", str(color_folder), "--per-class", "6", "--batch-size", "4")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["phase"] == "head" and len(result["rates"]) == len(result["losses"]) >= 3
    assert result["rates"][0] <= result["suggested"] <= result["rates"][-1]


def test_a_frozen_runs_head_is_probed_with_the_numpy_update_it_trains_with(color_folder, monkeypatch):
    """Every block frozen: the run trains its head in numpy (SoftmaxFit), so the finder must probe that loop,
    not a Keras model the run never uses."""
    from core.model.heads import softmax_fit

    monkeypatch.setattr(lr_find, "rate_probe", lambda *a: pytest.fail("the Keras probe ran for a numpy head"))
    stepped = []
    real_step = softmax_fit.SoftmaxFit.step
    monkeypatch.setattr(softmax_fit.SoftmaxFit, "step",
                        lambda fit, x, y, w: stepped.append(fit.learning_rate) or real_step(fit, x, y, w))
    parts = split(sample(scan_folder(color_folder), per_class=10).items, 0.3, 0.0, 0)
    curve = lr_find.find_learning_rate(TrainConfig(dataset=str(color_folder), per_class=10, batch_size=8), parts,
                                       "head", steps=30)
    assert stepped == list(curve.rates)  # one numpy update per rate on the curve, at that rate
    assert min(curve.losses) < curve.losses[0]
