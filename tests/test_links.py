"""Symbolic links in a folder the user chose (README, "Symbolic links"): a link to a regular image file is
followed wherever it points; a link to a folder, a dangling link and a link to a special file are skipped and
named; the scan, the pool and prediction apply the same rule. A folder of links trains, checks and predicts as
the same folder of copies does, and a folder whose every file was skipped says why."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from core.data.pool import scan_pool
from core.data.scan import scan_folder
from core.data.sources import load_dataset
from core.errors import DataError
from core.health import check_health
from core.inference.batch import predict_batch
from core.runs.store import RunStore
from core.training.config import TrainConfig
from tests.helpers import make_color_folders, train_in_process


def linked_copy(copies, store, linked):
    """`linked`: the class folders of `copies`, each image a link into one flat image store elsewhere."""
    for path in sorted(copies.rglob("*.png")):
        kept = store / f"{path.parent.name}-{path.name}"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, kept)
        (linked / path.parent.name).mkdir(parents=True, exist_ok=True)
        os.symlink(kept, linked / path.parent.name / path.name)
    return linked


def test_a_folder_of_links_trains_checks_and_predicts_as_its_copies_do(tmp_path, own_runs, prepared):
    copies = make_color_folders(tmp_path / "copies", per_class=8)
    linked = linked_copy(copies, tmp_path / "photo-store", tmp_path / "links")
    assert all(p.is_symlink() for p in linked.rglob("*.png"))
    assert [i.relpath for i in scan_folder(linked).items] == [i.relpath for i in scan_folder(copies).items]

    config = TrainConfig(per_class=8, epochs=2, val_fraction=0.25, test_fraction=0.0)
    store = RunStore.default()
    runs = [store.load(train_in_process(config.with_(dataset=str(folder)))) for folder in (copies, linked)]
    assert [r.state for r in runs] == ["completed", "completed"], [r.status.get("message") for r in runs]
    assert runs[0].split().to_json() | {"root": ""} == runs[1].split().to_json() | {"root": ""}
    made = [r.predictions()["val"] for r in runs]
    assert made[0].names == made[1].names and np.allclose(made[0].probs, made[1].probs, atol=1e-6)

    health = [check_health(load_dataset(str(folder)), "efficientnet_lite0") for folder in (copies, linked)]
    assert health[0].images == health[1].images == 24
    for field in ("label_issues", "near_duplicates", "odd_images", "imbalance"):
        assert getattr(health[0], field) == getattr(health[1], field), field

    predicted = [predict_batch(store, runs[0].id, [folder]).as_results() for folder in (copies, linked)]
    tops = [{r["image"].rsplit("/", 2)[-2] + "/" + r["image"].rsplit("/", 1)[-1]: r["top"][0]["label"]
             for r in found} for found in predicted]
    assert len(tops[1]) == 24 and tops[0] == tops[1]


def test_links_that_are_not_to_an_image_file_are_skipped_and_named_by_the_scan_the_pool_and_prediction(
        tmp_path, trained_run):
    data = make_color_folders(tmp_path / "data", per_class=4)
    outside = make_color_folders(tmp_path / "elsewhere", per_class=1)
    Image.new("RGB", (24, 24), (200, 30, 30)).save(tmp_path / "elsewhere" / "another-red.png")
    os.symlink(tmp_path / "elsewhere" / "another-red.png", data / "red" / "from-elsewhere.png")  # followed
    os.symlink(tmp_path / "gone.png", data / "red" / "dangling.png")
    os.symlink(outside / "green", data / "green" / "a-folder")
    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "pipe", data / "blue" / "pipe.png")
    os.symlink(data / "blue", data / "blue-again")  # a class folder that is a link: not entered either

    dataset = scan_folder(data)
    assert len(dataset.items) == 13 and "red/from-elsewhere.png" in {i.relpath for i in dataset.items}
    why = {s.name: (s.reason, s.detail) for s in dataset.skipped}
    assert why["red/dangling.png"] == ("broken link", f"it points to {tmp_path / 'gone.png'}, which is not there")
    assert why["green/a-folder"][0] == "link not followed" and "a folder" in why["green/a-folder"][1]
    assert why["blue/pipe.png"][0] == "link not followed" and "FIFO" in why["blue/pipe.png"][1]
    assert why["blue-again"][0] == "link not followed"
    assert "blue-again" not in dataset.classes

    pool = scan_pool(data)
    assert len(pool.items) == 13 and {s.name for s in pool.skipped} >= set(why)

    batch = predict_batch(RunStore.default(), trained_run, [data])
    assert len(batch.results) == 13
    named = {s.name: s.reason for s in batch.skipped}
    assert named[str(data / "red" / "dangling.png")] == "broken link"
    assert named[str(data / "blue" / "pipe.png")] == "link not followed"


def test_a_folder_whose_every_file_was_skipped_says_why_at_every_step(tmp_path, own_runs):
    data = tmp_path / "broken"
    for label in ("cats", "dogs"):
        (data / label).mkdir(parents=True)
        for i in range(3):
            os.symlink(tmp_path / "moved-away" / f"{label}{i}.png", data / label / f"{label}{i}.png")
    sentence = f"{data} has no usable image: all 6 file.s. were skipped .broken link: 6.; for example cats/cats0.png"
    dataset = load_dataset(str(data))
    with pytest.raises(DataError, match=sentence):
        check_health(dataset, "efficientnet_lite0")
    run = RunStore.default().load(train_in_process(TrainConfig(dataset=str(data), epochs=1)))
    assert run.state == "failed" and run.status["message"].startswith(f"{data} has no usable image: all 6 file(s)")
    assert "Unexpected error" not in run.status["message"]
