"""AppTest per page, on the real core (a small trained run prepared by the tests)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.runs import jobs
from core.runs.store import RunStore
from tests.helpers import (
    APPTEST_TIMEOUT,
    COLORS,
    PROJECT_DIR,
    make_color_folders,
    metrics,
    open_page,
    text_of,
    wait_for,
)


def test_home_shows_environment_and_latest_runs(trained_run):
    at = open_page()
    assert at.title[0].value == "Transfer Learning Studio"
    from core.tf import tf

    m = metrics(at)
    gpus = tf.config.list_physical_devices("GPU")  # the page shows what TensorFlow itself reports
    assert m["Device"] == (f"GPU ({len(gpus)})" if gpus else "CPU") and m["TensorFlow"] == tf.__version__
    assert m["Model status"] == "ready"
    from core.runs.store import RunStore

    latest = [
        r.id for r in RunStore.default().runs()[:5]
    ]  # the trained run, or runs other tests of this process made since
    assert latest and all(run_id in text_of(at) for run_id in latest)
    assert not at.json and "TensorFlow Lite copy of the frozen feature model" in str(at.table[0].value)  # not JSON


def test_data_page_reports_the_demo_and_follows_the_sample_slider():
    at = open_page("data")
    m = metrics(at)
    assert m["Classes"] == "10" and m["Usable images"] == "1,797" and m["Skipped files"] == "0"
    assert "no exact copies" in text_of(at) and "no duplicates" not in text_of(at)  # Health may find near ones
    assert "200 images - 11% of 1,797" in text_of(at)
    at.slider[0].set_value(50).run()
    assert "500 images - 28% of 1,797" in text_of(at)
    assert at.session_state.per_class == 50
    at.toggle[0].set_value(True).run()  # augmentation on: six previews drawn with the trainer's augmenter
    assert not at.exception and at.session_state.augment.enabled
    previews = [i.captions for i in at.get("image") if any("variant" in c for c in i.captions)]
    assert previews == [[f"0, variant {n}" for n in range(1, 7)]]


def test_a_large_datasets_example_pictures_wait_for_a_click(monkeypatch):
    """Issue 44: above EXAMPLES_AT_ONCE images the Data page shows the class counts at once and the pictures on
    request (the digits demo's 1,797 stand in for a large set here)."""
    from ui import resources

    monkeypatch.setattr(resources, "EXAMPLES_AT_ONCE", 1_000)
    at = open_page("data")
    assert metrics(at)["Usable images"] == "1,797" and not at.get("image")
    examples = next(t for t in at.toggle if t.label.startswith("Show example images"))
    examples.set_value(True).run()
    assert not at.exception and len(at.get("image")) == 10  # a row of 6 pictures for each of the 10 classes


def test_data_page_uses_a_folder_and_reports_skipped_files(tmp_path, color_folder):
    import shutil

    folder = tmp_path / "mine"
    shutil.copytree(color_folder, folder)
    (folder / "red" / "notes.jpg").write_text("not an image")
    at = open_page("data")
    at.radio[0].set_value("Folder on this machine").run()
    at.text_input[0].set_value(str(folder)).run()
    at.button[0].click().run()
    assert not at.exception
    m = metrics(at)
    assert m["Classes"] == "3" and m["Usable images"] == "30" and m["Skipped files"] == "1"
    assert at.session_state.dataset == str(folder)
    bad = open_page("data")
    bad.radio[0].set_value("Folder on this machine").run()
    bad.text_input[0].set_value(str(tmp_path / "nowhere")).run()
    bad.button[0].click().run()
    assert not bad.exception and "nowhere' not found: expected a demo name" in text_of(bad)


def test_train_page_slider_changes_trainable_parameters(color_folder, lite0):
    from core.training.trainer import parameter_counts

    at = open_page("train", dataset=str(color_folder), dataset_label="colours")
    frozen_all = metrics(at)["Trainable parameters"]
    assert frozen_all == f"{1280 * 3 + 3:,}"
    at.slider[0].set_value(17).run()
    assert metrics(at)["Trainable parameters"] == f"{1280 * 3 + 3 + 409_600 + 2 * 1280:,}"
    at.slider[0].set_value(0).run()
    trainable, frozen = parameter_counts(lite0, 0, 3)
    assert metrics(at)["Trainable share"] == f"{trainable / (trainable + frozen):.1%}"


def test_every_block_frozen_stays_so_on_a_backbone_with_more_blocks(color_folder):
    """Feature extraction on Lite0 (18 of 18 frozen) is still feature extraction on Lite1 (23 of 23), not a run
    that fine-tunes Lite1's last 5 blocks; a number of blocks stays that number."""
    from core.backbones.depth import ALL

    at = open_page("train", dataset=str(color_folder), dataset_label="colours")
    at.selectbox[0].set_value("efficientnet_lite1").run()
    assert at.slider[0].value == 23 and at.session_state.frozen_blocks == ALL
    assert metrics(at)["Trainable parameters"] == f"{1280 * 3 + 3:,}"
    at.slider[0].set_value(10).run()
    at.selectbox[0].set_value("efficientnet_lite0").run()
    assert at.slider[0].value == 10 and at.session_state.frozen_blocks == 10


def test_the_first_pages_never_load_tensorflow(color_folder):
    """Home, Data and Train (the block diagram, the parameter counts) in a fresh process, as a first visit:
    importing TensorFlow would cost the first Train click seconds."""
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("streamlit_app.py", default_timeout=120)
at.session_state["dataset"] = {str(color_folder)!r}
at.session_state["dataset_label"] = "colours"
at.run()
at.switch_page("app_pages/train.py").run()
counts = [m.value for m in at.metric][:2]
at.switch_page("app_pages/data.py").run()
assert not at.exception, [e.value for e in at.exception]
print(counts, "tensorflow" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "['3,843', '3,413,024'] False", out.stdout


def test_train_page_queues_a_run_with_the_defaults(color_folder, workers_in_process):
    at = open_page("train", dataset=str(color_folder), dataset_label="colours", per_class=6)
    at.number_input[0].set_value(2)  # epochs
    at.button[0].click().run()
    assert not at.exception
    run_id = at.session_state.run_id
    run = RunStore.default().load(run_id)
    assert run.config.dataset == str(color_folder) and run.status["owner"] == at.session_state.token
    assert at.query_params["s"] == at.session_state.token  # a reload finds this session's run again
    assert jobs.wait(RunStore.default(), run_id, timeout=600)["state"] == "completed"


def test_a_second_click_on_train_does_not_queue_the_same_run_again(color_folder, own_runs, monkeypatch):
    """While a run with these settings waits in the queue (no worker takes it here), Train again says so and
    queues nothing; other settings queue a run."""
    from core.runs.store import RunStore

    monkeypatch.setattr(jobs, "ensure_workers", lambda store: 0)
    at = open_page("train", dataset=str(color_folder), dataset_label="colours", per_class=6)
    at.button[0].click().run()
    first = at.session_state.run_id
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("with these settings is already queued, so it was not queued again" in i.value for i in at.info)
    assert [r.id for r in RunStore.default().runs()] == [first]
    at.number_input[0].set_value(2)  # epochs: other settings
    at.button[0].click().run()
    assert at.session_state.run_id != first and len(RunStore.default().runs()) == 2


def test_training_the_same_finished_run_again_asks_first(color_folder, own_runs, workers_in_process):
    """After a run finished, Train with nothing changed says this exact run exists, links to it and queues nothing;
    "Train again anyway" queues it; another seed is another run (issue 43 saw three identical runs at 95.1%)."""
    from core.runs.store import RunStore

    at = open_page("train", dataset=str(color_folder), dataset_label="colours", per_class=6)
    at.number_input[0].set_value(2)  # epochs
    at.button[0].click().run()
    first = at.session_state.run_id
    assert jobs.wait(RunStore.default(), first, timeout=600)["state"] == "completed"
    at.run()
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"This exact run exists: run {first}" in i.value for i in at.info)
    assert [r.id for r in RunStore.default().runs()] == [first] and at.session_state.run_id == first
    assert f"run={first}" in str([link.proto for link in at.get("page_link")])
    next(b for b in at.button if b.label == "Train again anyway").click().run()
    again = at.session_state.run_id
    assert again != first and len(RunStore.default().runs()) == 2 and "same_run" not in at.session_state
    assert jobs.wait(RunStore.default(), again, timeout=600)["state"] == "completed"
    next(n for n in at.number_input if n.label == "Seed").set_value(7)
    at.button[0].click().run()
    assert len(RunStore.default().runs()) == 3 and not any("This exact run exists" in i.value for i in at.info)


def test_results_page_shows_accuracy_and_confusion(trained_run):
    at = open_page("results", run_id=trained_run)
    m = metrics(at)
    val = RunStore.default().load(trained_run).metrics()["val_accuracy"]
    assert m["Validation accuracy"] == f"{val:.1%}"
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # curves, confusion, per-class
    assert "image(s)" in text_of(at)
    val_predictions = RunStore.default().load(trained_run).predictions()["val"]
    at.selectbox[0].set_value("blue").run()  # true class
    at.selectbox[1].set_value("blue").run()  # predicted as
    assert f"{len(val_predictions.cell(0, 0))} image(s)" in text_of(at)
    at.selectbox[1].set_value("green").run()
    assert f"{len(val_predictions.cell(0, 1))} image(s)" in text_of(at)


def test_activations_page(trained_run):
    at = open_page("activations", run_id=trained_run)
    assert any("Prediction:" in m.value for m in at.markdown)
    assert len(at.get("image")) >= 4  # input, saliency, feature maps, mean map, before/after, filters


def test_predict_page_asks_for_images(trained_run):
    at = open_page("predict", run_id=trained_run)
    assert "Upload images to classify them" in text_of(at)


@pytest.mark.parametrize("page, sentence", [
    ("results", "No runs yet. Train one on the **Train** page; the defaults work."),
    ("activations", "No completed runs yet. Train one on the **Train** page (the defaults work)."),
    ("predict", "No completed runs yet. Train one on the **Train** page (the defaults work).")])
def test_pages_without_runs_explain_what_to_do(page, sentence, own_runs):
    at = open_page(page)
    assert [i.value for i in at.info] == [sentence]


def test_experiments_page_starts_a_sweep_and_compares_runs(color_folder, trained_run, workers_in_process):
    from core.runs import sweeps

    at = open_page("experiments", dataset=str(color_folder), dataset_label="colours")
    assert "**2 runs**" in text_of(at)  # defaults here: 5 images per class, frozen 'all' and 15
    at.multiselect[0].set_value([5]).run()
    at.multiselect[1].set_value(["all"]).run()
    assert re.search(r"\*\*1 runs\*\*, (about \d+ (s|min) \(from \d+ measured|roughly \d+ (s|min) \(a first guess)",
                     text_of(at)) and "on this machine's CPU" in text_of(at)
    at.number_input[0].set_value(1).run()
    at.button[0].click().run()
    assert not at.exception
    sweep_id = at.session_state.sweep_id
    assert wait_for(lambda: sweeps.load_sweep(RunStore.default(), sweep_id).done, timeout=600)
    done = open_page("experiments", dataset=str(color_folder), dataset_label="colours", sweep_id=sweep_id)
    table = done.dataframe[0].value
    assert len(table) == 1 and table["per class"].tolist() == [5] and table["frozen"].tolist() == ["all"]
    assert len(done.dataframe) == 2  # the sweep's table and the side-by-side comparison table


def test_predict_page_classifies_an_upload_kept_on_disk(trained_run):
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    noise = np.random.default_rng(7).integers(-12, 13, (24, 24, 3))  # drawn like the training images
    Image.fromarray(np.clip(np.array(COLORS["red"]) + noise, 0, 255).astype(np.uint8)).save(buf, "PNG")
    at = open_page("predict", run_id=trained_run)
    at.file_uploader[0].upload("mine.png", buf.getvalue(), "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["predict_upload__n"] == 1 and not at.file_uploader[0].value  # released, shown empty
    (name, path), = at.session_state.predict_files
    assert name == "mine.png" and Path(path).read_bytes() == buf.getvalue()
    assert any('mine.png: red' in chart.proto.spec for chart in at.get("plotly_chart"))
    assert "1 uploaded image(s) from this tab" in text_of(at)


def test_analyze_page_probes_every_block_and_applies_the_suggested_depth(tmp_path):
    from core.analysis import latest

    colours = make_color_folders(tmp_path / "colours")  # never analysed before
    at = open_page("analyze", dataset=str(colours), dataset_label="colours", per_class=10, frozen_blocks=5)
    assert "Press **Analyze**" in text_of(at) and at.button[0].label == "Analyze"
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    analysis = latest(str(colours), "efficientnet_lite0")
    assert analysis is not None and len(analysis.depth) == 18
    assert metrics(at)["Best block"] == analysis.depth[analysis.best_block].block
    assert len(at.get("plotly_chart")) == 2 and "training images per class" in text_of(at)
    use = next(b for b in at.button if b.label.startswith("Use "))
    use.click().run()
    assert not at.exception and at.session_state.frozen_blocks == analysis.suggested_frozen
    assert at.title[0].value == "Train"


def test_train_page_finds_a_learning_rate_and_puts_it_in_the_form(color_folder):
    at = open_page("train", dataset=str(color_folder), dataset_label="colours", per_class=6)
    next(b for b in at.button if b.label == "Find a learning rate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    curve = at.session_state.lr_curve
    assert curve.phase == "head" and len(at.get("plotly_chart")) >= 2  # the blocks figure and the rate curve
    next(b for b in at.button if b.label.startswith("Use ")).click().run()
    assert not at.exception
    assert at.session_state.w_lr == pytest.approx(min(max(curve.suggested, 1e-6), 1.0))
    assert at.number_input(key="w_lr").value == pytest.approx(at.session_state.w_lr)


def test_data_page_health_finds_a_planted_flip_and_undoes_corrections(tmp_path, color_folder):
    import shutil
    import time

    from core.data.overrides import overrides_path, set_override
    from core.data.scan import scan_folder
    from core.health import latest

    folder = tmp_path / "flipped"
    shutil.copytree(color_folder, folder)
    (folder / "red" / "red_03.png").rename(folder / "green" / "red_03.png")
    at = open_page("data")
    at.radio[0].set_value("Folder on this machine").run()
    at.text_input[0].set_value(str(folder)).run()
    at.button[0].click().run()
    next(b for b in at.button if b.label == "Check the dataset's health").click().run()
    assert not at.exception, [e.value for e in at.exception]
    health = latest(str(folder), "efficientnet_lite0")
    assert health.label_issues[0].file == "green/red_03.png" and health.label_issues[0].suggested == "red"
    assert metrics(at)["Likely label errors"] == str(len(health.label_issues))
    set_override(scan_folder(folder), "green/red_03.png", "relabel", "red")
    at.session_state.dataset_stamp = time.time()  # as the page's own save does: scan again
    at.run()
    assert "1 correction(s) in effect" in text_of(at)
    next(b for b in at.button if b.label == "Remove every correction").click().run()
    assert not at.exception and not overrides_path(folder).exists()


@pytest.mark.parametrize("page", ["results", "activations", "predict"])
def test_a_link_opens_its_run_and_a_bad_one_gets_a_sentence(page, trained_run, tmp_path):
    import shutil

    from core import paths

    at = AppTest.from_file(str(PROJECT_DIR / "streamlit_app.py"), default_timeout=APPTEST_TIMEOUT)
    at.query_params["run"] = trained_run
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception and at.session_state.run_id == trained_run
    assert at.query_params["run"] == trained_run  # the address keeps naming the run shown
    copy = paths.runs_dir() / f"damaged-{page}"
    shutil.copytree(paths.runs_dir() / trained_run, copy)
    (copy / "weights.npz").write_bytes(b"overwritten")
    try:
        for wanted, why in (("20990101-000000-nosuch", "there is no such run"), (copy.name, "it is damaged")):
            at = AppTest.from_file(str(PROJECT_DIR / "streamlit_app.py"), default_timeout=APPTEST_TIMEOUT)
            at.query_params["run"] = wanted
            at.run()
            at.switch_page(f"app_pages/{page}.py").run()
            assert not at.exception, [e.value for e in at.exception]
            if page == "results" and wanted == copy.name:  # Results lists damaged runs and says what is wrong
                assert at.session_state.run_id == wanted and "Damaged" in text_of(at)
            else:
                assert f"The link names run '{wanted}', but {why}" in text_of(at)
    finally:
        shutil.rmtree(copy)


def test_results_copy_link_names_the_run(trained_run):
    at = open_page("results", run_id=trained_run)
    codes = [c.value for c in at.code]
    assert any(code.endswith(f"?run={trained_run}") for code in codes), codes


def test_presenting_hides_editing_controls_and_keeps_the_pages(trained_run):
    at = open_page("train", run_id=trained_run)
    assert any(b.label == "Train" for b in at.button)
    at.sidebar.toggle[0].set_value(True).run()
    assert not at.exception and not any(b.label == "Train" for b in at.button)
    assert "Presenting: the training settings and the Train button are hidden" in text_of(at)
    at.switch_page("app_pages/data.py").run()
    assert not at.radio and "Presenting: the controls that change the data" in text_of(at)
    assert not at.slider and "train," in text_of(at)  # the sample and split as text
    at.switch_page("app_pages/results.py").run()
    assert not at.exception and metrics(at)  # the numbers are all there
    assert not any(b.label == "Build the export" for b in at.button)
    at.sidebar.toggle[0].set_value(False).run()
    assert any(b.label == "Build the export" for b in at.button)
