"""Trust: intervals, calibration, the "none of these" rule, near duplicates and the split, label
issues, the corrections file, and what a run and its predictions record of all this."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.overrides import overrides_path, read_overrides, set_override
from core.data.sampling import leak_check, split
from core.data.scan import scan_folder
from core.errors import DataError, TrainingError
from core.health.duplicates import near_duplicates
from core.health.labels import label_issues
from core.health.pixels import look_at
from core.model.calibration import ece, fit_temperature, scale
from core.model.metrics import wilson
from core.model.rejection import fit_rule
from core.runs.store import RunStore
from tests.helpers import make_color_folders, open_page, text_of, train_in_process


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), table I: 81/263 -> 0.2553-0.3662; 0/10 and 10/10 stay inside [0, 1].
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0) and wilson(0, 0) is None
    assert wilson(18, 20)[1] - wilson(18, 20)[0] > wilson(180, 200)[1] - wilson(180, 200)[0]


def test_temperature_scaling_recovers_a_planted_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (4000, 5))
    truth = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=p) for p in truth])
    overconfident = scale(truth, 1 / 3.0)  # the model says softmax(3 z)
    temperature = fit_temperature(overconfident, labels)
    assert 2.7 < temperature < 3.3
    fixed = scale(overconfident, temperature)
    assert (fixed.argmax(1) == overconfident.argmax(1)).all()
    assert ece(fixed, labels) < 0.03 < ece(overconfident, labels)


def test_none_of_these_rule_flags_far_vectors_and_few_of_its_own():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32))
    def draw(n):
        labels = np.repeat(np.arange(4), n)
        return centres[labels] + rng.normal(0, 0.35, (len(labels), 32)), labels
    train, labels = draw(30)
    rule = fit_rule(train, labels, 4)
    held, _ = draw(100)
    far = rng.normal(size=(200, 32))
    assert rule.unknown(held).mean() <= 0.05
    assert rule.unknown(far).mean() >= 0.9
    again = type(rule).from_weights(rule.weights())
    assert again.threshold == pytest.approx(rule.threshold) and np.allclose(again.means, rule.means)


def _texture(rng, size=48):
    small = rng.integers(0, 255, (6, 6), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.BICUBIC)


def _items(folder: Path):
    return list(scan_folder(folder).items)


def test_near_duplicates_find_planted_copies_in_a_varied_set(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "textures"
    planted = set()
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(20):
            _texture(rng).save(root / label / f"{i:02d}.png")
    source = Image.open(root / "a" / "03.png")
    source.resize((96, 96), Image.BILINEAR).save(root / "b" / "copy-resized.png")  # across classes
    buf = io.BytesIO()
    source.convert("RGB").save(buf, "JPEG", quality=70)
    (root / "a" / "copy-jpeg.jpg").write_bytes(buf.getvalue())
    planted = {"a/03.png", "b/copy-resized.png", "a/copy-jpeg.jpg"}
    items = _items(root)
    thumbs = np.stack([x.thumb for x in look_at(items)])
    found = near_duplicates(thumbs, None)
    assert not found.crowded and len(found.groups) == 1
    assert {items[i].relpath for i in found.groups[0]} == planted
    groups = [[items[i].relpath for i in g] for g in found.groups]
    for seed in range(5):
        parts = split(items, 0.3, 0.2, seed, groups)
        assert leak_check(parts, groups, "thumbnails")["across"] == 0


def test_near_duplicates_find_planted_copies_in_a_crowded_set(tmp_path):
    """8x8 digits: the typical digit has a neighbour nearly as close as a copy. Copies resized, re-encoded
    and cropped (half filed under another class) still stand out from both images' own neighbours."""
    import shutil

    from benchmarks.crowded import copy_of
    from core.data.sources import demo_folder

    rng = np.random.default_rng(5)
    root = tmp_path / "digits"
    for path in sorted(demo_folder("digits").rglob("*.png"))[::6]:  # 300 of them, every class
        (root / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / path.parent.name / path.name)
    originals = sorted(root.rglob("*.png"))
    planted = set()
    for n, index in enumerate(rng.choice(len(originals), 6, replace=False)):
        source, kind = originals[index], ("resized", "jpeg", "crop")[n % 3]
        label = str((int(source.parent.name) + 1) % 10) if n % 2 else source.parent.name
        copy_of(Image.open(source), kind, rng).save(root / label / f"copy-{kind}-{source.name}")
        planted.add(frozenset((f"{source.parent.name}/{source.name}", f"{label}/copy-{kind}-{source.name}")))
    items = _items(root)
    found = near_duplicates(np.stack([x.thumb for x in look_at(items)]), None)
    reported = {frozenset((items[a].relpath, items[b].relpath)) for g in found.groups
                for i, a in enumerate(g) for b in g[i + 1:]}
    assert found.crowded and found.median_nearest >= 0.93
    assert len(reported & planted) >= 5, (reported, planted)
    assert len(reported) <= 2 * len(planted), reported


def _reads_as_sentences(text: str) -> bool:
    """Capital or digit first, a full stop last, and no fragment glued on with a colon ("by not claimed: ...")."""
    return (text[0].isupper() or text[0].isdigit()) and text.endswith(".") and ": not" not in text.lower() \
        and "by not" not in text


def test_the_leak_check_and_health_checks_read_as_sentences(tmp_path):
    from core.health import _label_issues, near_duplicate_groups

    rng = np.random.default_rng(3)
    base = np.asarray(_texture(rng), np.int16)
    alike = lambda: Image.fromarray(np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8))  # noqa: E731
    for folder, image in (("varied", lambda: _texture(rng)), ("crowded", alike)):
        for label in ("a", "b"):
            (tmp_path / folder / label).mkdir(parents=True)
            for i in range(12):
                image().save(tmp_path / folder / label / f"{i:02d}.png")
    sentences = []
    for folder in ("varied", "crowded"):
        items = _items(tmp_path / folder)
        search = near_duplicate_groups(items, "efficientnet_lite0_random")
        named = [[items[i].relpath for i in g] for g in search.groups]
        sentences += [search.how, leak_check(split(items, 0.3, 0.2, 0, named), named, search.how)["text"]]
    assert "looked for" in sentences[0] and "crowded" in sentences[2]
    vectors = rng.normal(size=(24, 8))
    sentences += [_label_issues(_items(tmp_path / "varied"), vectors, ("a", "b"), 0, None)[1],
                  _label_issues(_items(tmp_path / "varied")[:3], vectors[:3], ("a", "b"), 0, None)[1]]
    for text in sentences:
        assert _reads_as_sentences(text), text


def test_label_issues_rank_planted_flips_first():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 24)) * 2
    labels = np.repeat(np.arange(5), 40)
    vectors = centres[labels] + rng.normal(0, 1.0, (200, 24))
    flipped = rng.choice(200, 10, replace=False)
    given = labels.copy()
    given[flipped] = (labels[flipped] + 1 + rng.integers(0, 4, 10)) % 5
    from core.health.labels import out_of_fold_probs

    steps = []
    probs = out_of_fold_probs(vectors, given, tuple("abcde"), progress=lambda done, total: steps.append((done, total)))
    assert steps == [(i, 11) for i in range(1, 12)]  # a probe over 10 folds, then the k-NN vote: the bar moves
    issues = label_issues(probs, given)
    top = [x.index for x in issues[:10]]
    assert len(set(top) & set(flipped.tolist())) >= 6
    assert all(x.suggested == labels[x.index] for x in issues[:10] if x.index in flipped)


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_corrections_relabel_and_exclude_without_touching_the_images(tmp_path):
    root = make_color_folders(tmp_path / "colors", per_class=4)
    before = _tree(root)
    ds = scan_folder(root)
    set_override(ds, "red/red_00.png", "relabel", "green")
    set_override(ds, "blue/blue_01.png", "exclude")
    again = scan_folder(root)
    labels = {i.relpath: i.label for i in again.items}
    assert labels["red/red_00.png"] == "green" and "blue/blue_01.png" not in labels and len(again) == 11
    assert [a["file"] for a in again.overrides["applied"]] == ["blue/blue_01.png", "red/red_00.png"]
    assert _tree(root) == before and overrides_path(root).parent == root.parent
    set_override(again, "red/red_00.png", "relabel", "red")  # back to its folder's class: the mark goes
    assert list(read_overrides(root)) == ["blue/blue_01.png"]
    with pytest.raises(DataError, match="not one of this dataset's classes"):
        set_override(again, "red/red_01.png", "relabel", "purple")


def test_a_stale_or_malformed_corrections_file_is_named_and_changes_nothing(tmp_path):
    root = make_color_folders(tmp_path / "colors", per_class=3)
    set_override(scan_folder(root), "red/red_00.png", "exclude")
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(root / "red" / "red_00.png")  # edited after marking
    before = _tree(root)
    stale = scan_folder(root)
    assert "red/red_00.png" in {i.relpath for i in stale.items}
    assert any("no longer match" in w and "red/red_00.png (the file changed" in w for w in stale.warnings)
    overrides_path(root).write_text('{"entries": {"red/red_01.png": {"action": "burn"}}')
    with pytest.raises(DataError) as error:
        scan_folder(root)
    assert str(overrides_path(root)) in str(error.value) and "Fix it or delete it" in str(error.value)
    overrides_path(root).write_text("{not json")
    with pytest.raises(DataError, match="not readable JSON"):
        scan_folder(root)
    assert _tree(root) == before


def test_class_weighting_is_refused_where_there_is_no_loss():
    from core.model.heads import balanced_weights
    from core.training.config import TrainConfig

    with pytest.raises(TrainingError, match="no loss to weight"):
        TrainConfig(head="knn", class_weight=True).validate()
    weights = balanced_weights(np.array([0] * 30 + [1] * 10))
    assert weights[0] * 30 == pytest.approx(weights[1] * 10)


def test_a_run_records_intervals_calibration_and_its_rule(trained_run, skimage_images, tmp_path):
    from core.inference.predict import predict_sources

    run = RunStore.default().load(trained_run)
    m, data = run.metrics(), run.dataset()
    n_val = len(run.split().val)
    assert m["val_accuracy_interval"] == list(wilson(round(m["val_accuracy"] * n_val), n_val))
    assert {"ece", "ece_before", "temperature", "val_balanced_accuracy", "val_macro_f1"} <= set(m)
    assert m["val_unknown_share"] <= 0.1
    assert data["leak_check"]["across"] == 0
    assert _reads_as_sentences(data["leak_check"]["text"]), data["leak_check"]["text"]
    assert "rejection/means" in run.weights()
    photo = tmp_path / "chelsea.png"
    Image.fromarray(skimage_images["chelsea"]).save(photo)
    own = run.split().val[0]
    results = predict_sources(RunStore.default(), trained_run, [("chelsea.png", photo), (own.relpath, own.path)])
    assert results[0]["unknown"] is True and results[1]["unknown"] is False


def test_health_cli_prints_the_documented_json(tmp_path, capsys):
    root = make_color_folders(tmp_path / "colors", per_class=8)
    (root / "green" / "red_07.png").write_bytes((root / "red" / "red_07.png").read_bytes())
    (root / "red" / "red_07.png").unlink()  # a red image filed under green
    Image.fromarray(np.full((24, 200, 3), 128, np.uint8)).save(root / "blue" / "strip.png")
    from core.cli import main

    assert main(["health", "--data", str(root)]) == 0  # in this process: the session's TensorFlow is loaded
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"label_issues", "near_duplicates", "imbalance", "odd_images", "seconds"} <= set(result)
    first = result["label_issues"][0]
    assert (first["file"], first["given"], first["suggested"]) == ("green/red_07.png", "green", "red")
    odd = {x["file"]: x["reason"] for x in result["odd_images"]}
    assert "extreme aspect ratio" in odd["blue/strip.png"] or "nearly blank" in odd["blue/strip.png"]
    assert result["imbalance"]["counts"] == {"blue": 9, "green": 9, "red": 7}


def test_a_run_after_corrections_records_them_and_results_compares_it_with_the_run_before(tmp_path):
    from core.runs import trust
    from core.training.config import TrainConfig

    root = make_color_folders(tmp_path / "colors", per_class=6)
    config = TrainConfig(dataset=str(root), per_class=6, head="knn", val_fraction=0.34, test_fraction=0.0)

    def trained() -> str:
        run_id = train_in_process(config)
        assert RunStore.default().load(run_id).state == "completed", RunStore.default().load(run_id).status
        return run_id
    before = trained()
    set_override(scan_folder(root), "red/red_05.png", "exclude")
    after = trained()
    run = RunStore.default().load(after)
    assert trust.corrections(run)["applied"] == [{"file": "red/red_05.png", "action": "exclude", "label": None}]
    assert [r.id for r in trust.related_by_corrections(RunStore.default(), run)] == [before, after]
    at = open_page("results", run_id=after)
    assert not at.exception, [e.value for e in at.exception]
    assert "Before and after corrections and labelling rounds" in [h.value for h in at.subheader]
    assert "Trained with 1 correction(s)" in text_of(at)


def test_no_temperature_is_fitted_when_every_validation_image_is_right():
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    assert fit_temperature(probs, np.array([0, 1, 0])) == 1.0  # log-loss would only say "sharper, forever"
    assert fit_temperature(probs, np.array([1, 1, 0])) >= 0.5


def test_a_second_run_of_the_same_sample_reuses_its_duplicate_search(tmp_path, prepared, monkeypatch):
    """Issue 44: at 20,000 images the search is most of a run whose vectors are stored. The same images, backbone
    and size give the same groups without a second search; a changed image searches again."""
    from core.training import split as run_split
    from core.training.config import TrainConfig

    root = make_color_folders(tmp_path / "colors", per_class=6)
    config = TrainConfig(dataset=str(root), per_class=6, epochs=1)
    first = run_split.sample_split(config)
    assert "feature vectors" in first.leak_check["text"]

    def searched(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(run_split, "near_duplicate_groups", searched)
    again = run_split.sample_split(config.with_(seed=1, per_class=6))
    assert again.leak_check["text"] == first.leak_check["text"]
    changed = sorted((root / "red").iterdir())[0]
    changed.write_bytes((root / "blue" / sorted(p.name for p in (root / "blue").iterdir())[0]).read_bytes())
    with pytest.raises(AssertionError, match="searched again"):
        run_split.sample_split(config)
