"""The benchmark's baseline and the trainer see exactly the same images (not a timing test)."""

import pytest

import benchmarks.baseline as baseline
from core.data.sampling import sample, split
from core.data.scan import scan_folder
from core.training import inputs, trainer
from core.training.config import TrainConfig


def test_baseline_and_trainer_use_identical_splits(color_folder, monkeypatch):
    parts = split(sample(scan_folder(color_folder), per_class=6).items, 0.34, 0.0)
    seen = {"trainer": [], "baseline": []}

    def spy(who, original):
        def load(items, size, *args, **kwargs):
            seen[who].append([i.relpath for i in items])
            return original(items, size, *args, **kwargs)
        return load

    # The trainer decodes whole (item_arrays) or streams chunk by chunk (array_chunks), by the run's kind.
    monkeypatch.setattr(inputs, "item_arrays", spy("trainer", inputs.item_arrays))
    monkeypatch.setattr(inputs, "array_chunks", spy("trainer", inputs.array_chunks))
    monkeypatch.setattr(baseline, "item_arrays", spy("baseline", baseline.item_arrays))
    config = TrainConfig(epochs=1, image_size=64, batch_size=4)
    trainer.train(config, parts)
    result = baseline.train_baseline(config, parts)
    assert len(seen["trainer"]) == 1
    trainer_images = seen["trainer"][0]  # train + val + test in one pass
    train_names, val_names = [i.relpath for i in parts.train], [i.relpath for i in parts.val]
    assert trainer_images == train_names + val_names + [i.relpath for i in parts.test]
    assert seen["baseline"] == [train_names, val_names]
    # Scored on exactly the six validation images, and the baseline really learns: solid colours are separated
    # by ImageNet features after one epoch (all six right here, seeded; one wrong is allowed).
    right = result["val_accuracy"] * len(parts.val)
    assert len(parts.val) == 6 and right == pytest.approx(round(right)) and round(right) >= 5
    assert result["seconds"] > 0
