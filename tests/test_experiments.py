"""Sweeps, comparison tables, HTML reports and model exports."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.backbones.depth import ALL
from core.data.arrays import item_arrays
from core.inference.export import export_run
from core.inference.predict import run_model
from core.present.report import report, write_report
from core.runs import jobs, sweeps, worker
from core.runs.runs_table import best, comparison_rows, rows_csv
from core.runs.store import RunState, RunStore
from core.training.config import TrainConfig
from tests.helpers import ARTIFACTS_DIR, CHROMIUM, FLAGS, cli, run_queued_in_process


def test_grid_points_skip_impossible_combinations():
    spec = sweeps.SweepSpec(
        base=TrainConfig(), per_class=(10, 20), frozen_blocks=(ALL, 15), augment=(False, True), heads=("dense", "svm")
    )
    points = spec.points()
    assert len(points) == 2 * 2 * 2 + 2  # svm only with every block frozen and no augmentation
    assert {(p.per_class, p.frozen_blocks, p.augment.enabled, p.head) for p in points if p.head == "svm"} == {
        (10, ALL, False, "svm"), (20, ALL, False, "svm")}
    assert sweeps.SweepSpec.from_json(spec.to_json()) == spec


def test_sweep_resumes_without_redoing_finished_runs(color_folder, own_runs, monkeypatch):
    """The app and its worker die mid-sweep (simulated by a dead pid; the real SIGKILL of a worker is
    tests/test_reliability_runs.py's): resuming keeps the finished run and the queued one, and replaces
    the dead one only. The runs train in this process."""
    base = TrainConfig(dataset=str(color_folder), epochs=2, image_size=64, val_fraction=0.3, test_fraction=0.0,
                       batch_size=2)
    monkeypatch.setattr(jobs, "ensure_workers", lambda store: 0)  # the three wait in the queue
    sweep = sweeps.create_sweep(RunStore.default(), sweeps.SweepSpec(base=base, per_class=(4, 6, 8)), "resume test")
    first, second = sweep.run_ids[:2]
    with jobs.queue_lock(RunStore.default()):
        worker.execute(RunStore.default(), first)
    assert RunStore.default().load(first).state == "completed"
    gone = subprocess.Popen(["true"])
    gone.wait()
    RunStore.default().update(second, state=RunState.RUNNING, pid=gone.pid)  # its worker was killed while training
    assert RunStore.default().load(second).state == "failed"
    monkeypatch.setattr(jobs, "ensure_workers", run_queued_in_process)
    resumed = sweeps.resume(RunStore.default(), sweep.id)
    assert resumed.run_ids[0] == first and resumed.run_ids[2] == sweep.run_ids[2]
    assert resumed.run_ids[1] != second
    assert sweeps.load_sweep(RunStore.default(), sweep.id).done
    rows = comparison_rows([r for r in sweeps.load_sweep(RunStore.default(), sweep.id).runs()])
    assert [r["per class"] for r in rows] == [4, 6, 8]
    assert [r["images"] for r in rows] == [12, 18, 24] and rows[-1]["share"] == 0.8
    assert rows_csv(rows).splitlines()[0].startswith("run,dataset,images,share,per class")
    page = report(RunStore.default(), sweep.id)
    assert "id='comparison'" in page and "id='learning-curve'" in page
    assert page.count("<tr>") == 4  # header + 3 runs
    assert best(rows, "val acc") is not None


def test_cli_sweep_prints_the_table(color_folder, own_runs, workers_in_process):
    out = cli("sweep", "--data", str(color_folder), "--sizes", "4", "6", "--frozen", "all", "--epochs", "1")
    assert out.returncode == 0, out.stderr[-2000:]
    final = json.loads(out.stdout.strip().splitlines()[-1])
    assert final["progress"] == {"completed": 2} and len(final["runs"]) == 2
    assert re.search(r"^images\s+share\s+frozen", out.stdout, re.M)


def test_run_report_has_every_section_and_no_network_reference(trained_run, color_folder, tmp_path):
    from core.analysis import analyze

    analyze(str(color_folder), "efficientnet_lite0", per_class=10)  # the report shows the latest analysis
    html = report(RunStore.default(), trained_run)
    for section in ("configuration", "dataset", "curves", "metrics", "confusion", "misclassified", "trust",
                    "analysis"):
        assert f"id='{section}'" in html
    assert "plotly.js v" in html  # the library itself is inline
    assert not re.search(r"<script[^>]+src=['\"]https?://", html)
    assert "data:image/png;base64," in html or "Every validation image was classified correctly" in html
    written = Path(write_report(RunStore.default(), trained_run, str(tmp_path / "r.html"))).read_text(encoding="utf-8")
    assert written.startswith("<!doctype html>") and f"<h1>Run {trained_run}</h1>" in written
    # The settings in words, as the Train page shows them, not raw Python (issue 43).
    settings = html[html.index("id='configuration'"):html.index("id='dataset'")]
    assert not re.search(r"None|True|False|\{'|&#x27;:", settings), settings
    assert "one: every block is frozen, so only the head trains" in settings
    assert "does not apply: nothing is fine-tuned" in settings and "10 images per class" in settings
    dataset = html[html.index("id='dataset'"):html.index("id='curves'")]
    assert re.search(r"\d+ to train, \d+ to validate, \d+ to test", dataset) and "{" not in dataset
    per_class = html[html.index("id='metrics'"):html.index("id='confusion'")]
    assert re.search(r"<td[^>]*>\d+\.\d%</td>", per_class)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_report_opens_offline_in_chromium(trained_run, color_folder, tmp_path):
    from playwright.sync_api import sync_playwright

    from core.analysis import analyze

    analyze(str(color_folder), "efficientnet_lite0", per_class=10)
    path = tmp_path / "report.html"
    write_report(RunStore.default(), trained_run, str(path))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.route(re.compile(r"^https?://"), lambda route: route.abort())  # no network at all
        page.goto(path.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        for heading in ("Configuration", "Dataset", "Training curves", "Confusion matrix (validation)",
                        "How far these numbers can be trusted", "Transfer analysis"):
            assert page.get_by_role("heading", name=heading).count() == 1
        assert page.locator(".js-plotly-plot").count() == 5  # curves, confusion, reliability, the two analysis plots
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": page.evaluate("document.body.scrollHeight") + 50})
        page.screenshot(path=str(ARTIFACTS_DIR / "report.png"))
        browser.close()


@pytest.mark.parametrize("fmt", ["savedmodel", "keras", "tflite", "onnx"])
def test_exports_load_back_and_agree_with_the_run(trained_run, tmp_path, fmt):
    result = export_run(RunStore.default(), trained_run, fmt, tmp_path / fmt)
    assert result.top1_agreement == 1.0 and result.checked_images == len(
        RunStore.default().load(trained_run).split().val
    )
    assert result.max_abs_diff < 1e-3
    labels = (result.path / "labels.txt").read_text().splitlines()
    assert labels == ["blue", "green", "red"]
    assert "float32 RGB images in [0, 1]" in (result.path / "USAGE.md").read_text()
    # Independently of export_run's own check: load the file the way USAGE.md says and compare.
    run = RunStore.default().load(trained_run)
    images = item_arrays(run.split().val, 224).astype(np.float32) / 255.0
    saved = run.predictions()["val"]
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter  # as USAGE.md says (tf.lite.Interpreter is deprecated)

        assert "ai_edge_litert" in (result.path / "USAGE.md").read_text()
        interpreter = Interpreter(model_path=str(result.path / "model.tflite"))
        inp = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(inp, images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp, images)
        interpreter.invoke()
        probs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    elif fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(result.path / "model.onnx"), providers=["CPUExecutionProvider"])
        probs, features = session.run(["probs", "features"], {"image": images})
        rule = json.loads((result.path / "metadata.json").read_text())["none_of_these"]
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        flagged = 1 - (unit @ np.array(rule["class_means"]).T).max(axis=1) > rule["threshold"]
        assert flagged.tolist() == run_model(RunStore.default(), trained_run).unknown(
            features
        )  # the rule as USAGE.md applies it
        _usage_recipe_on_a_non_square_photo(trained_run, result.path, session, tmp_path)
    elif fmt == "keras":
        from core.tf import tf_keras

        probs = tf_keras.models.load_model(str(result.path / "model.keras")).predict(images, verbose=0)
    else:
        from core.tf import tf

        probs = tf.saved_model.load(str(result.path / "model")).signatures["serving_default"](
            image=tf.constant(images))["output_0"].numpy()
    assert (probs.argmax(1) == saved.predicted).all()
    assert np.abs(probs - saved.probs).max() < 1e-3


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_the_web_page_classifies_offline_as_the_studio_does(trained_run, tmp_path):
    """The page opened from file:// with every request aborted: 20 of the run's images, a non-square photo and an
    image of a colour the run never saw, through its file input, against the studio's own predictions."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from core.inference.predict import predict_sources

    result = export_run(RunStore.default(), trained_run, "web", tmp_path / "web")
    page_file = result.path / "classifier.html"
    assert not (result.path / "model.onnx").exists() and result.top1_agreement == 1.0
    text = page_file.read_text(encoding="utf-8")
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=['"]?(https?:)?//""", text)
    split = RunStore.default().load(trained_run).split()
    files = [i.path for i in (*split.val, *split.test, *split.train)][:20]
    wide = tmp_path / "wide.jpg"
    pixels = np.full((300, 400, 3), (210, 40, 40), np.uint8)
    pixels[:, 250:] = (40, 60, 220)
    Image.fromarray(pixels).save(wide, quality=90)
    yellow = tmp_path / "yellow.png"
    Image.fromarray(np.full((24, 24, 3), (230, 220, 30), np.uint8)).save(yellow)
    files += [str(wide), str(yellow)]
    requested = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.route(re.compile(r"^https?://"), lambda route: (requested.append(route.request.url), route.abort()))
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(page_file.as_uri())
        page.wait_for_function("window.studioReady || window.studioFailed", timeout=120_000)
        assert page.evaluate("window.studioFailed || null") is None
        page.set_input_files("#pick", files)
        page.wait_for_function(f"(window.classified || []).length === {len(files)}", timeout=120_000)
        got = page.evaluate("window.classified")
        assert "none of the classes (closest:" in page.inner_text("#results")
        browser.close()
    assert requested == [] and errors == []
    studio = predict_sources(RunStore.default(), trained_run, [(f, f) for f in files], k=3)
    for mine, theirs in zip(got, studio, strict=False):
        assert "error" not in mine, mine
        assert [t["label"] for t in mine["top"]] == [t["label"] for t in theirs["top"]], mine["name"]
        pairs = zip(mine["top"], theirs["top"], strict=True)
        assert max(abs(a["probability"] - b["probability"]) for a, b in pairs) < 1e-3
        assert mine["unknown"] == theirs["unknown"], mine["name"]
    assert got[-1]["unknown"] is True  # yellow: far from every colour the run learnt


def _usage_recipe_on_a_non_square_photo(trained_run, folder, session, tmp_path):
    """USAGE.md's preprocessing, written out with Pillow alone, on a 4:3 photo (where lobe.NET#6 went wrong), gives
    the studio's prediction."""
    from PIL import Image

    from core.inference.predict import predict_sources

    assert "squashed to a square, not cropped" in (folder / "USAGE.md").read_text()
    photo = tmp_path / "wide.jpg"
    pixels = np.full((300, 400, 3), (210, 40, 40), np.uint8)
    pixels[:, 250:] = (40, 60, 220)  # a blue strip on the right, which a centre crop would cut
    Image.fromarray(pixels).save(photo, quality=90)
    image = Image.open(photo).convert("RGB").resize((224, 224), Image.BICUBIC, reducing_gap=3.0)
    probs = session.run(["probs"], {"image": (np.asarray(image, np.float32) / 255.0)[None]})[0][0]
    studio = predict_sources(RunStore.default(), trained_run, [("wide.jpg", str(photo))], k=3)[0]["top"]
    labels = (folder / "labels.txt").read_text().splitlines()
    assert labels[int(probs.argmax())] == studio[0]["label"]
    assert abs(float(probs.max()) - studio[0]["probability"]) < 1e-4


def test_export_refuses_an_existing_folder(trained_run, tmp_path):
    (tmp_path / "taken").mkdir()
    from core.errors import StudioError

    with pytest.raises(StudioError, match="already exists"):
        export_run(RunStore.default(), trained_run, "keras", tmp_path / "taken")


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_slide_deck_moves_with_the_keys_offline_and_prints_one_slide_per_page(trained_run, tmp_path):
    from playwright.sync_api import sync_playwright

    from core.cli import main

    assert main(["report", trained_run, "--slides", "--out", str(tmp_path / "deck.html")]) == 0
    deck = (tmp_path / "deck.html").read_text(encoding="utf-8")
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=['"]?(https?:)?//""", deck)  # all inline
    slides = deck.count("<section class='slide")
    assert slides >= 5  # title, curves, confusion, misclassified, trust (the analysis when one was made)
    requested = []

    def refuse(route):
        requested.append(route.request.url)
        route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.route(re.compile(r"^(?!file:)"), refuse)  # every request that is not the file itself
        page.goto((tmp_path / "deck.html").as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        top = "n => Math.round(document.querySelectorAll('section.slide')[n].getBoundingClientRect().top)"
        assert page.evaluate(top, 0) == 0
        for key, slide in (("ArrowRight", 2), ("PageDown", 3), ("Space", 4), ("ArrowLeft", 3)):
            page.keyboard.press(key)
            page.wait_for_function(f"location.hash === '#{slide}'", timeout=5_000)
            page.wait_for_function(f"Math.abs(document.querySelectorAll('section.slide')[{slide - 1}]"
                                   f".getBoundingClientRect().top) < 2", timeout=5_000)
        assert page.locator("#counter").inner_text() == f"3 / {slides}"
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS_DIR / "slide-3.png"))
        page.emulate_media(media="print")  # as Chromium's print dialog does: the figures fit the printed slide
        page.wait_for_timeout(500)
        page.pdf(path=str(tmp_path / "deck.pdf"), prefer_css_page_size=True, print_background=True)
        browser.close()
    assert requested == []
    assert shutil.which("pdftoppm"), "pdftoppm (poppler-utils) is needed to count the printed pages"
    subprocess.run(["pdftoppm", "-r", "10", "-png", str(tmp_path / "deck.pdf"), str(tmp_path / "page")], check=True)
    assert len(list(tmp_path.glob("page-*.png"))) == slides


INSIDE = """() => [...document.querySelectorAll('section.slide')].flatMap((slide, n) => {
  const box = slide.getBoundingClientRect();
  return [...slide.querySelectorAll('*')].filter(e => !e.closest('svg') || e.classList.contains('main-svg'))
    .map(e => [e, e.getBoundingClientRect()]).filter(([e, r]) => r.width > 0 && r.height > 0)
    .filter(([e, r]) => r.top < box.top - 1 || r.bottom > box.bottom + 1 || r.left < box.left - 1
                        || r.right > box.right + 1)
    .map(([e, r]) => `slide ${n + 1}: <${e.tagName.toLowerCase()}> ${(e.textContent || '').slice(0, 40)}`);
})"""


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
@pytest.mark.parametrize("width, height", [(1920, 1080), (1280, 720)])
def test_every_slide_fits_its_screen(trained_run, square_run, tmp_path, width, height):
    """Every element's box lies inside its slide (the last lines were clipped at 1920x1080, issue 43), for a
    frozen run and a fine-tuned one with its two phases."""
    from playwright.sync_api import sync_playwright

    decks = []
    for run_id in (trained_run, square_run):
        write_report(RunStore.default(), run_id, str(tmp_path / f"{run_id}.html"), slides=True)
        decks.append(tmp_path / f"{run_id}.html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        for deck in decks:
            page.goto(deck.as_uri())
            page.wait_for_function("window.slidesFitted === true", timeout=60_000)
            assert page.evaluate(INSIDE) == [], deck.name
            if width == 1920:
                ARTIFACTS_DIR.mkdir(exist_ok=True)
                page.keyboard.press("End")
                page.wait_for_timeout(300)
                page.screenshot(path=str(ARTIFACTS_DIR / f"slide-last-{deck.stem}.png"))
        browser.close()
