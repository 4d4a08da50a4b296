"""RunSummary (one description of a run for every table) and the live progress text."""

import json

from core.data.augment import AugmentConfig
from core.runs.store import Run, RunState
from core.runs.summary import RunSummary, describe_progress
from core.training.config import TrainConfig


def make_run(tmp_path, state="completed", **config):
    (tmp_path / "metrics.json").write_text(json.dumps({"train_accuracy": 1.0, "val_accuracy": 0.875,
                                                       "test_accuracy": None, "seconds": 12.4,
                                                       "trainable_params": 25, "frozen_params": 75}))
    (tmp_path / "dataset.json").write_text(json.dumps({"name": "colours", "sample_size": 30, "sample_share": 0.5,
                                                       "sample_per_class": {"red": 10, "blue": 8}}))
    return Run(
        id="r1",
        dir=tmp_path,
        config=TrainConfig(dataset="/data/colours", **config),
        status={"state": state, "owner": "tab"},
    )


def test_a_completed_run(tmp_path):
    r = RunSummary.of(make_run(tmp_path, frozen_blocks=15, augment=AugmentConfig.standard()))
    assert (r.state, r.dataset, r.frozen, r.per_class, r.images, r.trainable_share) == (
        RunState.COMPLETED, "colours", "15", 10, 30, 0.25)
    assert r.label() == "r1 - colours, efficientnet_lite0, 15 frozen, dense - val 87.5% [completed]"
    assert r.series() == "efficientnet_lite0, 15 frozen, augmented, dense"
    assert r.frozen_phrase == "15 blocks frozen"
    row = r.row()
    assert (row["frozen"], row["per class"], row["val acc"], row["test acc"], row["seconds"]) == (
        "15", "20", 0.875, None, 12.4)  # the run's own 12.4 s, not 12 (the runs table said 2.0 where the run said 1.6)


def test_a_run_that_has_not_finished_shows_no_accuracy(tmp_path):
    r = RunSummary.of(make_run(tmp_path, state="running", fraction=0.5, per_class=None))
    assert r.state.active and r.val_accuracy is None and r.row()["per class"] == "50%"
    assert r.label().endswith("dense [running]") and r.frozen_phrase == "every block frozen"


def test_progress_text():
    bars, caption = describe_progress({"phase": "fine-tune", "epoch": 2, "epochs": 4, "batch": 1, "batches": 4,
                                       "metrics": {"loss": 0.5}, "eta_seconds": 9.6})
    assert bars == [(0.3125, "Fine-tuning the unfrozen blocks with the head: epoch 2 of 4"),
                    (0.25, "Batch 1 of 4")]
    assert caption == "loss 0.500 - about 9.6 s left in this phase"
    assert describe_progress({"phase": "decode", "batch": 64, "batches": 128})[0] == [
        (0.5, "Decoding images: 64 of 128")]
    assert describe_progress({"phase": "features"})[0] == [(0.0, "Computing features at the cut (once per image)")]
    for phase in ("starting", "decode", "evaluate", "saving"):  # every stage reads as words, not a code
        assert describe_progress({"phase": phase})[0][0][1][0].isupper()


def test_a_run_from_before_intervals_gets_them_from_its_split_sizes(tmp_path):
    from core.model.metrics import wilson

    make_run(tmp_path)
    data = json.loads((tmp_path / "dataset.json").read_text())
    (tmp_path / "dataset.json").write_text(json.dumps({**data, "split_sizes": {"train": 20, "val": 8, "test": 0}}))
    r = RunSummary.of(Run(id="r1", dir=tmp_path, config=TrainConfig(), status={"state": "completed"}))
    low, high = wilson(7, 8)
    assert r.val_interval == (low, high) and r.test_interval is None
    assert r.label().endswith(f"val 87.5% ({low:.1%}-{high:.1%}) [completed]")
    assert r.row()["val 95% CI"] == f"{low:.1%}-{high:.1%}"
