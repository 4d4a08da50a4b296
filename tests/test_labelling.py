"""Which images to label next (issue 32): the pool, the strategies on planted vectors, the suggestions on real images
through the bundled backbone, the additions record, and the CLI."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from core.data.additions import additions_path, read_additions, remove_additions
from core.data.pool import against, label_pool, scan_pool
from core.data.scan import scan_folder
from core.data.sources import load_pool
from core.errors import DataError
from core.model import acquisition
from core.model.rejection import fit_rule
from core.runs.store import RunStore
from tests.helpers import cli, make_color_folders


def _shade(path, color, seed, size=24):
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(color) + rng.integers(-12, 13, (size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def labelled_and_pool(tmp_path):
    """Colour classes (10 each) and a pool of: 2 new shades per colour, 3 yellow (a class the dataset lacks), a copy
    of a labelled image, a copy of a pool image, a text file, a broken PNG."""
    data = make_color_folders(tmp_path / "colors")
    pool = tmp_path / "pool"
    (pool / "camera" / "day2").mkdir(parents=True)
    colors = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 60, 220), "yellow": (230, 220, 30)}
    for name, color in colors.items():
        for i in range(3 if name == "yellow" else 2):
            _shade(pool / "camera" / f"{name}_{i}.png", color, 100 + 10 * len(name) + i)
    shutil.copy(data / "red" / "red_00.png", pool / "camera" / "day2" / "copy_of_red.png")
    shutil.copy(pool / "camera" / "green_0.png", pool / "camera" / "day2" / "green_again.png")  # kept: first by name
    (pool / "notes.txt").write_text("not an image")
    (pool / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return data, pool


def test_pool_sets_aside_copies_and_what_is_not_an_image(labelled_and_pool):
    data, pool_dir = labelled_and_pool
    pool = against(scan_pool(pool_dir), scan_folder(data))
    assert len(pool) == 9
    assert all(i.label == "" for i in pool.items)
    whys = {d.name: d.detail for d in pool.duplicates}
    assert "red/red_00.png" in whys["camera/day2/copy_of_red.png"]
    assert "camera/day2/green_again.png" in whys["camera/green_0.png"]  # the first in name order is kept
    assert {s.name for s in pool.skipped} == {"notes.txt", "broken.png"}


def test_bad_pools_get_a_sentence(tmp_path, labelled_and_pool):
    data, _ = labelled_and_pool
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        scan_pool(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="no usable images: 1 file"):
        scan_pool(tmp_path / "text")
    (tmp_path / "copies").mkdir()
    shutil.copy(data / "blue" / "blue_01.png", tmp_path / "copies" / "b.png")
    with pytest.raises(DataError, match="nothing left to label"):
        against(scan_pool(tmp_path / "copies"), scan_folder(data))
    with pytest.raises(DataError, match="Pool .* not found"):
        load_pool(str(tmp_path / "nowhere"))


def test_pool_from_a_zip_is_unpacked_under_the_safe_rules(tmp_path, labelled_and_pool):
    import zipfile

    _, pool_dir = labelled_and_pool
    archive = tmp_path / "phone.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(pool_dir / "camera" / "red_0.png", "DCIM/red_0.png")
        z.write(pool_dir / "camera" / "blue_0.png", "blue_0.png")
        z.writestr("../escape.png", b"x")
    pool = load_pool(str(archive))
    assert sorted(i.relpath for i in pool.items) == ["DCIM/red_0.png", "blue_0.png"]
    assert ("../escape.png", "unsafe path") in {(s.name, s.reason) for s in pool.skipped}
    assert "pools" in pool.root


# ---------- the strategies, on vectors with a known answer ----------

def _blob(rng, centre, n, spread=0.05):
    return centre + spread * rng.standard_normal((n, len(centre)))


def test_typical_picks_the_centres_of_the_groups_no_label_covers():
    rng = np.random.default_rng(0)
    a, b, c = np.eye(8)[0], np.eye(8)[1], np.eye(8)[2]
    labelled = _blob(rng, a, 4)
    pool = np.concatenate([_blob(rng, a, 10), _blob(rng, b, 30), _blob(rng, c, 15)])
    picks = acquisition.typical(3, pool, labelled, seed=0)
    groups = [0 if p.index < 10 else 1 if p.index < 40 else 2 for p in picks]
    assert groups[0] == 1 and set(groups) == {1, 2}  # the largest uncovered group first; none from the covered
    unit = pool[10:40] / np.linalg.norm(pool[10:40], axis=1, keepdims=True)
    assert picks[0].index - 10 in np.argsort(-(unit @ unit.mean(0)))[:10]  # among the most central third
    assert "none of your labelled ones" in picks[0].reason


def test_margin_picks_the_least_sure_one_per_group():
    rng = np.random.default_rng(1)
    vectors = np.concatenate([_blob(rng, np.eye(16)[g], 20) for g in range(3)])
    probs = np.tile([0.9, 0.05, 0.05], (60, 1))
    unsure = [3, 25, 47]  # one in each group; two more almost as unsure in the first group
    probs[unsure] = [[0.46, 0.44, 0.1], [0.1, 0.47, 0.43], [0.45, 0.1, 0.45]]
    probs[[5, 8]] = [[0.47, 0.42, 0.11], [0.48, 0.41, 0.11]]
    picks = acquisition.margin(3, vectors, probs, ("cat", "dog", "fox"), seed=0)
    assert sorted(p.index for p in picks) == unsure
    assert picks[0].index == 47 and "hesitates between cat and fox" in picks[0].reason


def test_rank_sets_the_unlike_images_apart_and_auto_adapts_to_the_labels():
    rng = np.random.default_rng(2)
    a, b, new = np.eye(8)[0], np.eye(8)[1], np.eye(8)[5]
    labelled, labels = np.concatenate([_blob(rng, a, 6), _blob(rng, b, 6)]), np.repeat([0, 1], 6)
    pool = np.concatenate([_blob(rng, a, 20), _blob(rng, b, 20), _blob(rng, new, 4)])
    probs = np.tile([0.5, 0.5], (len(pool), 1))
    ranking = acquisition.rank(pool, labelled, labels, probs, ("a", "b"), n=5)
    assert {40, 41, 42, 43} <= set(ranking.new_class) and len(ranking.new_class) <= 8
    assert not {p.index for p in ranking.picks} & set(ranking.new_class)
    assert ranking.strategy == "uncertainty"  # 6 labels a class
    few = acquisition.rank(pool, labelled[[0, 6]], labels[[0, 6]], probs, ("a", "b"), n=5,
                           rule=fit_rule(labelled, labels, 2))
    assert few.strategy == "diverse"


# ---------- on real images through the bundled backbone ----------

def test_suggest_sets_the_new_class_apart_and_guesses_the_rest(labelled_and_pool, prepared):
    """Yellow is a class the dataset lacks: the "none of these" rule sets it apart, unranked. (Which image the
    model is least sure of is tested on planted vectors above, and measured in benchmarks/labelling.py.)"""
    from core.inference.suggest import suggest

    data, pool = labelled_and_pool
    stages = []
    found = suggest(str(data), str(pool), n=4, strategy="uncertainty",
                    progress=lambda stage, done, total: stages.append(stage))
    assert list(dict.fromkeys(stages)) == ["dataset", "pool", "features", "guesses", "ranking"]  # each step named
    assert {c["file"] for c in found.new_class_candidates} == {f"camera/yellow_{i}.png" for i in range(3)}
    assert len(found.picks) == 4 and not {p["file"] for p in found.picks} & {c["file"] for c in
                                                                            found.new_class_candidates}
    scores = [p["score"] for p in found.picks]
    assert scores == sorted(scores, reverse=True)
    for p in found.picks:
        assert p["guess"] == p["file"].split("/")[-1].split("_")[0] and 0.5 < p["probability"] <= 1
        assert p["reason"].startswith("among the least sure") or "hesitates between" in p["reason"]
    assert set(found.to_json()["duplicates"]) == {"camera/day2/copy_of_red.png", "camera/green_0.png"}
    assert found.strategy == "uncertainty" and found.labelled == 30


def test_labels_are_recorded_beside_the_dataset_and_every_scan_applies_them(labelled_and_pool):
    data, pool_dir = labelled_and_pool
    before = {p.name: p.stat().st_mtime_ns for p in pool_dir.rglob("*")}
    dataset = scan_folder(data)
    done = label_pool(dataset, against(scan_pool(pool_dir), dataset),
                      {"camera/yellow_0.png": "yellow", "camera/red_0.png": "red"})
    assert not done.refused and additions_path(data).is_file()
    again = scan_folder(data)
    assert again.classes == ("blue", "green", "red", "yellow")
    added = {i.relpath: i for i in again.items if i.origin}
    assert set(added) == {"pool:camera/yellow_0.png", "pool:camera/red_0.png"}
    assert added["pool:camera/red_0.png"].label == "red"
    assert len(again.additions["applied"]) == 2
    assert before == {p.name: p.stat().st_mtime_ns for p in pool_dir.rglob("*")}  # the pool is untouched
    pool = against(scan_pool(pool_dir), again)
    assert set(pool.labelled) == {"camera/yellow_0.png", "camera/red_0.png"} and len(pool) == 7

    _shade(pool_dir / "camera" / "yellow_0.png", (0, 0, 0), 1)  # the image changes: its entry is ignored, named
    changed = scan_folder(data)
    assert "yellow" not in changed.classes
    assert changed.additions["stale"][0]["why"] == "the file changed after it was labelled"
    assert any("pool:camera/yellow_0.png (the file changed" in w for w in changed.warnings)
    assert remove_additions(data) == 2 and not scan_folder(data).additions


def test_an_added_image_keeps_its_own_path_through_a_split():
    from core.data.dataset import ImageItem
    from core.data.sampling import Split

    item = ImageItem(path="/pools/p/a.png", relpath="p:a.png", label="cat", sha256="ab" * 32, origin="/pools/p")
    split = Split.from_json(Split(train=(item,), val=(), test=(), classes=("cat",)).to_json(), "/data/set")
    assert split.train[0] == item


def test_refused_labels_write_nothing(labelled_and_pool):
    data, pool_dir = labelled_and_pool
    dataset = scan_folder(data)
    pool = against(scan_pool(pool_dir), dataset)
    done = label_pool(dataset, pool, {"camera/red_0.png": "red", "camera/nope.png": "red",
                                      "camera/blue_0.png": "bad/name", "camera/day2/copy_of_red.png": "red"})
    why = dict(done.refused)
    assert "not an image of the pool" in why["camera/nope.png"]
    assert "Class name 'bad/name' is not usable" in why["camera/blue_0.png"]
    assert why["camera/day2/copy_of_red.png"].startswith("set aside: duplicate")
    assert "camera/red_0.png" not in why and not additions_path(data).exists()


def test_a_malformed_record_stops_the_scan_naming_it(labelled_and_pool):
    data, _ = labelled_and_pool
    additions_path(data).write_text('{"entries": [{"path": 3}]}')
    with pytest.raises(DataError, match=r"colors\.additions\.json is not a valid record .*entry 1 needs"):
        scan_folder(data)
    additions_path(data).write_text("{not json")
    with pytest.raises(DataError, match="not readable JSON"):
        read_additions(data)


def test_cli_suggest_and_label(labelled_and_pool, prepared, tmp_path):
    data, pool = labelled_and_pool
    result = cli("suggest", "--data", str(data), "--pool", str(pool), "--n", "3", "--strategy", "random")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(out) >= {"picks", "new_class_candidates", "duplicates", "strategy", "seconds"}
    assert len(out["picks"]) == 3 and out["strategy"] == "random"
    assert set(out["picks"][0]) == {"file", "path", "score", "reason", "guess", "probability"}
    rows = tmp_path / "labels.csv"
    rows.write_text("file,class\ncamera/yellow_1.png,yellow\ncamera/green_1.png,green\n")
    result = cli("label", "--data", str(data), "--pool", str(pool), "--csv", str(rows))
    assert result.returncode == 0, result.stderr
    assert "added camera/yellow_1.png as yellow" in result.stdout
    assert len(read_additions(data)) == 2
    rows.write_text("camera/blue_1.png,blue\nmissing.png,blue\n")
    result = cli("label", "--data", str(data), "--pool", str(pool), "--csv", str(rows))
    assert result.returncode == 1 and "refused missing.png: not an image of the pool" in result.stdout
    assert len(read_additions(data)) == 2  # nothing written
    rows.write_text("camera/blue_1.png\n")
    result = cli("label", "--data", str(data), "--pool", str(pool), "--csv", str(rows))
    assert result.returncode == 2 and "line 1: expected two cells" in result.stderr


# ---------- the Data page ----------

def test_data_page_suggests_labels_saves_and_trains_again(labelled_and_pool, prepared, workers_in_process):
    from core.runs import jobs
    from core.runs.trust import related_by_corrections
    from core.training.config import TrainConfig
    from tests.helpers import open_page, text_of

    data, pool = labelled_and_pool
    before = RunStore.default().load(
        jobs.submit(RunStore.default(), TrainConfig(dataset=str(data), per_class=None, epochs=2))
    )
    jobs.wait(RunStore.default(), before.id)
    at = open_page("data", per_class=None, run_id=before.id)
    at.radio[0].set_value("Folder on this machine").run()
    at.text_input[0].set_value(str(data)).run()
    at.button[0].click().run()
    next(t for t in at.text_input if t.label == "Folder of unlabelled images").set_value(str(pool)).run()
    next(b for b in at.button if b.label == "Suggest images to label").click().run()
    assert not at.exception, [e.value for e in at.exception]
    picks = [b for b in at.selectbox if (b.key or "").startswith("label_pick_")]
    new = [b for b in at.selectbox if (b.key or "").startswith("label_new_")]
    assert len(picks) == 6 and len(new) == 3 and all(b.value is None for b in picks + new)  # nothing preselected
    assert all(f"guess: {b.key.split('/')[-1].split('_')[0]}" in b.placeholder for b in picks)  # guesses right
    assert next(b for b in at.button if b.label == "Save 0 label(s)").disabled
    for box in picks[1:]:  # confirming a guess is a choice
        box.set_value(box.key.split("/")[-1].split("_")[0])
    picks[0].set_value("skip")
    for box in new[:2]:  # a new class needs two images: one to train on, one to validate
        box.set_value("new class...").run()
        next(t for t in at.text_input if t.key == box.key.replace("label_", "new_", 1)).set_value("yellow").run()
    next(b for b in at.button if b.label == "Save 7 label(s)").click().run()
    assert not at.exception, [e.value for e in at.exception]
    entries = {a.file: a.label for a in read_additions(data)}
    assert len(entries) == 7 and list(entries.values()).count("yellow") == 2
    assert picks[0].key[len("label_pick_"):] not in entries
    assert "The dataset now has 37 images, 7 of them labelled from a pool" in text_of(at)
    assert at.session_state.per_class == 12  # the sample took every image (10 a class): it still does
    next(b for b in at.button if b.label == "Train again").click().run()
    after = RunStore.default().load(at.session_state.run_id)
    jobs.wait(RunStore.default(), after.id)
    after = RunStore.default().load(after.id)
    assert after.state == "completed", after.status
    assert after.id != before.id and len(after.dataset()["additions"]["applied"]) == 7
    assert "yellow" in after.split().classes
    assert sum(after.dataset()["split_sizes"].values()) == 37  # every labelled image reached the run
    assert [r.id for r in related_by_corrections(RunStore.default(), after)] == [before.id, after.id]
    results = open_page("results", run_id=after.id)
    assert "Before and after corrections and labelling rounds" in [h.value for h in results.subheader]
    assert "Trained with 7 image(s) labelled from a pool" in text_of(results)


def test_suggest_with_a_run_guesses_with_its_head_and_rule(labelled_and_pool, trained_run):
    from core.inference.suggest import suggest

    data, pool = labelled_and_pool
    found = suggest(str(data), str(pool), run=RunStore.default().load(trained_run), n=3, strategy="uncertainty")
    assert found.model == f"run {trained_run}" and len(found.picks) == 3
    assert {p["guess"] for p in found.picks} <= {"red", "green", "blue"}
    assert {f"camera/yellow_{i}.png" for i in range(3)} <= {c["file"] for c in found.new_class_candidates}


def test_a_fine_tuned_runs_guesses_decode_the_pool_a_chunk_at_a_time(square_run, tmp_path, monkeypatch):
    """Issue 44: a fine-tuned run computes its own vectors for the pool, STREAM images decoded at a time (a
    10,000-image pool is 1.5 GB decoded), and guesses as one pass over every image would."""
    from core.data import arrays
    from core.inference import suggest as suggesting
    from core.inference.predict import run_model
    from tests.helpers import square_image

    rng = np.random.default_rng(7)
    for i in range(5):
        Image.fromarray(square_image(rng)[0]).save(tmp_path / f"p{i}.png")
    model = run_model(RunStore.default(), square_run)
    dataset = RunStore.default().load(square_run).config.dataset
    pool = scan_pool(tmp_path)
    decoded = []
    real = arrays.item_arrays
    monkeypatch.setattr(arrays, "item_arrays",
                        lambda items, *args, **kw: decoded.append(len(items)) or real(items, *args, **kw))
    monkeypatch.setattr(suggesting, "STREAM", 2)
    probs, _ = suggesting._guesses(model, scan_folder(dataset), pool, None, None, None, 0)
    assert decoded == [2, 2, 1]
    whole = model.classify(real(pool.items, model.size))[0]
    assert np.abs(probs - whole).max() < 1e-5
