"""What a user or a file names is data, never markup, a formula or a path to follow (issue 42): class names that
are HTML/JS injections in the web page, the report and the slides; class folders a labels file cannot hold;
special files named like images; CSV cells a spreadsheet would run; records pointing outside their pool; a node's
malformed result; and how many workers the queue starts."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from core.data.additions import additions_path, read_additions, write_additions
from core.data.pool import scan_pool
from core.data.scan import scan_folder
from core.errors import DataError
from core.fileio import csv_rows, csv_text, sha256_file
from core.runs.arrival import arrive
from core.runs.store import RunStore
from core.training.config import TrainConfig
from tests.conftest import shared_run
from tests.helpers import CHROMIUM, FLAGS, PROJECT_DIR, cli, make_color_folders, run_cli_process

HOSTILE = ("<img src=x onerror=alert(1)>", '"><svg onload=alert(3)>', "<!--<script>", "';alert(4);'")
FORMULAS = ("=HYPERLINK(\"http://x\",\"y\")", "@SUM(1+1)", "-2+3.png", "+1", "\tx", "\rx", "'quoted")


def _hostile_config(folder: Path) -> TrainConfig:
    colors = make_color_folders(folder / "colors", per_class=8)
    (colors / "red").rename(colors / HOSTILE[0])
    (colors / "green").rename(colors / HOSTILE[1])
    (colors / "blue").rename(colors / HOSTILE[2])
    (colors / HOSTILE[3]).mkdir()
    for i in range(8):
        pixels = np.clip(np.array((230, 220, 30)) + np.random.default_rng(i).integers(-12, 13, (24, 24, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(colors / HOSTILE[3] / f"yellow_{i}.png")
    return TrainConfig(dataset=str(colors), per_class=8, epochs=2, val_fraction=0.25, test_fraction=0.25)


@pytest.fixture(scope="module")
def hostile_run(prepared):
    return shared_run("hostile-run", _hostile_config)


# ---------- class names are text ----------

def test_the_web_page_embeds_class_names_as_escaped_json():
    from core.inference.web_page import embedded_json, page_html

    assert embedded_json({"c": ["</script><!--&"]}) == '{"c": ["\\u003c/script\\u003e\\u003c!--\\u0026"]}'
    page = page_html(title="__META__", summary="s", meta={"classes": ["__MODEL__", "<!--<script>"]}, model=b"m",
                     ort_module=b"o", wasm=b"w")
    assert "<!--<script>" not in page and '"__MODEL__"' in page  # a class spelling a placeholder stays itself
    assert "innerHTML" not in page


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")
def test_hostile_class_names_stay_text_in_the_web_page_report_and_slides(hostile_run, tmp_path):
    """Each file opened in Chromium with a dialog handler: no alert, no injected element, the names shown as
    they are, and the web page classifies."""
    from playwright.sync_api import sync_playwright

    from core.inference.export import export_run
    from core.present.report import write_report

    web = export_run(RunStore.default(), hostile_run, "web", tmp_path / "web").path / "classifier.html"
    write_report(RunStore.default(), hostile_run, str(tmp_path / "report.html"))
    write_report(RunStore.default(), hostile_run, str(tmp_path / "deck.html"), slides=True)
    labels = (tmp_path / "web" / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert sorted(labels) == sorted(HOSTILE)
    # One image of each class: each name comes first on some card (a '<!--' class would hide what follows it).
    images = list({i.label: i.path for i in RunStore.default().load(hostile_run).split().val}.values())
    assert len(images) == len(HOSTILE)
    injected = "document.querySelectorAll('img[src=\"x\"], svg[onload], [onerror], [onload]').length"
    dialogs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.route(re.compile(r"^https?://"), lambda route: route.abort())
        page.goto(web.as_uri())
        page.wait_for_function("window.studioReady || window.studioFailed", timeout=120_000)
        assert page.evaluate("window.studioFailed || null") is None
        page.set_input_files("#pick", images)
        page.wait_for_function(f"(window.classified || []).length === {len(images)}", timeout=120_000)
        assert all("top" in r for r in page.evaluate("window.classified"))
        shown = page.inner_text("#results")
        assert any(name in shown for name in HOSTILE) and page.evaluate(injected) == 0
        for name in ("report.html", "deck.html"):
            page.goto((tmp_path / name).as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
            assert page.evaluate(injected) == 0, name
            assert HOSTILE[0] in page.inner_text("body"), name
        page.wait_for_timeout(500)
        browser.close()
    assert dialogs == []


def test_a_class_folder_named_with_a_control_character_is_left_out_and_named(tmp_path):
    data = make_color_folders(tmp_path / "colors", per_class=3)
    (data / "red").rename(data / "re\nd")
    (data / "green").rename(data / "gr\u2028een")
    dataset = scan_folder(data)
    assert dataset.classes == ("blue",)
    warnings = " ".join(dataset.warnings)
    assert "'re\\nd' was left out: its name holds \\n" in warnings and "\\u2028" in warnings
    (data / "blue").rename(data / "bl\tue")
    with pytest.raises(DataError, match=r"'bl\\tue' was left out.*Rename the folder"):
        scan_folder(data)


# ---------- only regular files are read ----------

def _in_seconds(call, seconds: float = 30):
    """call() in a thread; its result, or a failure if it has not returned within `seconds` (a FIFO opened for
    reading blocks until a writer comes)."""
    found = {}
    thread = threading.Thread(target=lambda: found.setdefault("result", call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: a special file was opened"
    return found["result"]


@pytest.fixture
def fifo_release():
    """Open for writing every FIFO a test made, afterwards: a reader a failing test left blocked gets unstuck."""
    made = []
    yield made
    for path in made:
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_in_a_class_folder_or_a_pool_is_skipped_and_named_without_being_opened(tmp_path, fifo_release):
    data = make_color_folders(tmp_path / "colors", per_class=3)
    os.mkfifo(data / "red" / "fifo.png")
    fifo_release.append(data / "red" / "fifo.png")
    dataset = _in_seconds(lambda: scan_folder(data))
    assert {(s.name, s.reason) for s in dataset.skipped} == {("red/fifo.png", "not a regular file")}
    assert "a FIFO" in dataset.skipped[0].detail and len(dataset) == 9
    pool = tmp_path / "pool"
    pool.mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(pool / "one.png")
    os.mkfifo(pool / "fifo.png")
    fifo_release.append(pool / "fifo.png")
    found = _in_seconds(lambda: scan_pool(pool))
    assert [(s.name, s.reason) for s in found.skipped] == [("fifo.png", "not a regular file")]


def test_a_fifo_given_to_core_predict_is_skipped_and_named(trained_run, tmp_path, fifo_release):
    os.mkfifo(tmp_path / "fifo.png")
    fifo_release.append(tmp_path / "fifo.png")
    Image.new("RGB", (24, 24), (220, 40, 40)).save(tmp_path / "red.png")
    folder = tmp_path / "folder"
    folder.mkdir()
    os.mkfifo(folder / "other.jpg")
    fifo_release.append(folder / "other.jpg")
    result = _in_seconds(lambda: cli("predict", trained_run, str(tmp_path / "fifo.png"), str(tmp_path / "red.png"),
                                     str(folder), "--csv", str(tmp_path / "out.csv")))
    assert result.returncode == 0, result.stderr
    rows = {r["image"]: r for r in csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text()))}
    assert rows[str(tmp_path / "red.png")]["label"] == "red"
    for fifo in (tmp_path / "fifo.png", folder / "other.jpg"):
        assert rows[str(fifo)]["error"].startswith("skipped: not a regular file (a FIFO"), rows


def test_zip_members_that_are_special_files_or_links_are_not_extracted(tmp_path):
    import stat

    from core.data.sources import load_pool

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        png = io.BytesIO()
        Image.new("RGB", (8, 8), (9, 9, 9)).save(png, "PNG")
        archive.writestr("pool/ok.png", png.getvalue())
        for name, mode in (("pool/fifo.png", stat.S_IFIFO), ("pool/link.png", stat.S_IFLNK),
                           ("pool/device.png", stat.S_IFCHR)):
            info = zipfile.ZipInfo(name)
            info.external_attr = (mode | 0o644) << 16
            archive.writestr(info, b"x")
        archive.writestr("../escape.png", png.getvalue())
    (tmp_path / "pool.zip").write_bytes(buf.getvalue())
    pool = load_pool(str(tmp_path / "pool.zip"))
    reasons = {s.name: s.reason for s in pool.skipped}
    assert reasons == {"pool/fifo.png": "not a regular file", "pool/link.png": "symbolic link",
                       "pool/device.png": "not a regular file", "../escape.png": "unsafe path"}
    assert [i.relpath for i in pool.items] == ["pool/ok.png"]


# ---------- CSV cells are text ----------

def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_every_csv_neutralises_formulas_and_reads_back_as_written(tmp_path):
    from core.inference.predict import predictions_csv
    from core.model.metrics import Predictions
    from core.runs.runs_table import rows_csv
    from core.runs.store import read_predictions, write_predictions

    text = csv_text(["a"], [[cell] for cell in FORMULAS] + [[-0.5], ["plain"]])
    written = _cells(text)[1:]
    assert all(cell.startswith("'") for cell in written[:len(FORMULAS)]) and written[-2:] == ["-0.5", "plain"]
    assert [row[0] for row in csv_rows(text)[1:]] == [*FORMULAS, "-0.5", "plain"]
    results = [{"image": name, "top": [{"label": "=cmd", "probability": 0.9}], "unknown": False} for name in FORMULAS]
    dangerous = re.compile(r"^[=+\-@\t\r]")
    assert not [c for c in _cells(predictions_csv(results)) if dangerous.match(c)]
    assert not [c for c in _cells(rows_csv([{"run": "@SUM(1)", "dataset": "=1+2"}])) if dangerous.match(c)]
    classes = ("=cmd", "@x")
    predictions = {
        s: Predictions(
            names=FORMULAS[:2], labels=np.array([0, 1]), probs=np.array([[0.9, 0.1], [0.2, 0.8]]), classes=classes
        )
        for s in ("train", "val", "test")
    }
    write_predictions(tmp_path, predictions)
    assert not [c for c in _cells((tmp_path / "predictions.csv").read_text()) if dangerous.match(c)]
    back = read_predictions(tmp_path)["val"]
    assert back.names == FORMULAS[:2] and back.classes == classes


def test_a_runs_predictions_and_metrics_csv_hold_no_formula(hostile_run):
    from core.present.views import RunViews

    run = RunStore.default().load(hostile_run)
    dangerous = re.compile(r"^[=+\-@\t\r]")
    assert not [c for c in _cells((run.dir / "predictions.csv").read_text()) if dangerous.match(c)]
    assert not [c for c in _cells(RunViews(RunStore.default().load(hostile_run)).metrics_csv()) if dangerous.match(c)]


# ---------- records and pools ----------

def test_an_addition_outside_its_pool_is_refused_and_a_failing_one_names_its_record(tmp_path):
    from core.data.additions import Addition

    data = make_color_folders(tmp_path / "colors", per_class=3)
    pool = tmp_path / "pool"
    pool.mkdir()
    outside = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), (5, 5, 5)).save(outside)
    write_additions(data, [Addition(path=str(pool / ".." / "secret.png"), file="../secret.png", pool=str(pool),
                                    sha256=sha256_file(outside), label="red")])
    with pytest.raises(DataError, match=r"colors\.additions\.json is not a valid record .*entry 1 \('\.\./secret"
                                        r"\.png'\).*not the file .* inside the pool folder"):
        scan_folder(data)
    write_additions(
        data, [Addition(path=str(outside), file="x.png", pool=str(pool), sha256=sha256_file(outside), label="red")]
    )
    with pytest.raises(DataError, match="entry 1 .*inside the pool folder"):
        read_additions(data)
    fake = pool / "fake.png"
    fake.write_text("not an image at all")
    write_additions(
        data, [Addition(path=str(fake), file="fake.png", pool=str(pool), sha256=sha256_file(fake), label="red")]
    )
    dataset = scan_folder(data)
    assert len(dataset) == 9
    assert any("colors.additions.json were ignored: pool:fake.png (not a usable image" in w for w in dataset.warnings)
    additions_path(data).unlink()


def test_cli_suggest_names_what_it_skipped(tmp_path, prepared):
    data = make_color_folders(tmp_path / "colors", per_class=3)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for i, color in enumerate(((200, 30, 30), (30, 30, 200))):
            png = io.BytesIO()
            Image.new("RGB", (24, 24), color).save(png, "PNG")
            archive.writestr(f"shots/{i}.png", png.getvalue())
        archive.writestr("../../evil.png", b"x")
        archive.writestr("notes.txt", b"hello")
    (tmp_path / "pool.zip").write_bytes(buf.getvalue())
    result = cli("suggest", "--data", str(data), "--pool", str(tmp_path / "pool.zip"), "--n", "1")
    assert result.returncode == 0, result.stderr
    skipped = {s["file"]: s["reason"] for s in json.loads(result.stdout.strip().splitlines()[-1])["skipped"]}
    assert skipped["../../evil.png"].startswith("unsafe path") and skipped["notes.txt"].startswith("not an image")


# ---------- a node's result ----------

def _cluster_run(own_runs, color_folder) -> str:
    run = RunStore.default().create(TrainConfig(dataset=str(color_folder), per_class=4, epochs=1))
    return run.id


MALFORMED = {
    "empty file name": {"node": "n1", "status": {"state": "completed"}, "files": {"": b"x"}},
    "a NUL byte": {"node": "n1", "status": {"state": "completed"}, "files": {"metrics.json\x00": b"{}"}},
    "no files key": {"node": "n1", "status": {"state": "completed"}},
    "a string status": {"node": "n1", "status": "completed", "files": {}},
    "the cancel file": {"node": "n1", "status": {"state": "completed"}, "files": {"cancel": b"requested"}},
    "the queue lock": {"node": "n1", "status": {"state": "completed"}, "files": {"lock": b""}},
    "the worker log": {"node": "n1", "status": {"state": "failed"}, "files": {"worker.log": b"x"}},
    "state queued": {"node": "n1", "status": {"state": "queued"}, "files": {}},
    "not a dict": ["files"],
    "a path": {"node": "n1", "status": {"state": "completed"}, "files": {"../runs/x/status.json": b"{}"}},
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_node_result_fails_its_run_and_writes_nothing(case, own_runs, color_folder):
    run_id = _cluster_run(own_runs, color_folder)
    before = sorted(p.name for p in (own_runs / run_id).iterdir())
    assert arrive(RunStore.default(), run_id, MALFORMED[case], nodes=["n1"]) == "failed"
    run = RunStore.default().load(run_id, verify=False)
    assert run.state == "failed" and run.status["message"].startswith("The cluster's result for this run was refused")
    assert sorted(p.name for p in (own_runs / run_id).iterdir()) == before  # no file written, none in a parent
    assert sorted(p.name for p in own_runs.iterdir()) == [run_id]


def test_the_dispatcher_goes_on_after_a_malformed_result(ray_cluster, own_runs, color_folder):
    """Flight.collect over three results from the object store: two malformed, one that raises on the node; every
    run ends failed with a sentence and collect itself raises nothing."""
    import ray

    from core.runs.dispatch import Flight, _progress_fields

    @ray.remote(max_retries=0)
    def broken():
        raise ValueError("the node broke")

    runs = [_cluster_run(own_runs, color_folder) for _ in range(3)]
    flight = Flight(RunStore.default(), board=None)
    flight.refs = {runs[0]: ray.put(MALFORMED["no files key"]), runs[1]: ray.put("nonsense"),
                   runs[2]: broken.remote()}
    deadline = time.monotonic() + 60
    while flight.refs and time.monotonic() < deadline:
        flight.collect()
        time.sleep(0.2)
    assert not flight.refs
    messages = [RunStore.default().load(r, verify=False).status["message"] for r in runs]
    assert all(RunStore.default().load(r, verify=False).state == "failed" for r in runs), messages
    assert "refused" in messages[0] and "refused" in messages[1] and "could not finish" in messages[2]
    assert _progress_fields({"state": "queued", "message": 5, "progress": "x", "started": "now"}) == \
        {"message": "", "progress": {}, "started": None}


def test_a_driver_without_the_token_is_refused_with_a_sentence(ray_cluster):
    address, _ = ray_cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = os.environ["STUDIO_HOME"]  # no ~/.ray/auth_token either
    script = "import sys; from core.runs.remote import connect; connect(sys.argv[1])"
    out = subprocess.run([sys.executable, "-c", script, address], cwd=PROJECT_DIR, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0
    assert "RAY_AUTH_TOKEN" in out.stderr and "Traceback" in out.stderr  # a RunError naming the fix


# ---------- workers ----------

def _worker_pids(runs_dir: Path, seen: set[int], stop: threading.Event) -> None:
    while not stop.is_set():
        for proc in psutil.process_iter(["cmdline"]):
            try:
                cmd = proc.info["cmdline"] or []
            except (psutil.Error, KeyError):
                continue
            if cmd[-3:] == ["worker", "--runs-dir", str(runs_dir)]:  # spawn names the store it serves
                seen.add(proc.pid)
        time.sleep(0.05)


def test_two_concurrent_trains_and_a_sweep_start_one_worker_per_run(own_runs, color_folder, prepared):
    from core.runs import jobs

    seen: set[int] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=_worker_pids, args=(own_runs, seen, stop), daemon=True)
    watcher.start()
    first = RunStore.default().create(TrainConfig(dataset=str(color_folder), per_class=4, epochs=1)).id
    started = [
        jobs.ensure_workers(RunStore.default()) for _ in range(5)
    ]  # a worker counts before it has started Python
    assert started == [1, 0, 0, 0, 0]
    assert jobs.wait(RunStore.default(), first, timeout=300)["state"] == "completed"
    args = ("--data", str(color_folder), "--per-class", "4", "--epochs", "1", "--runs-dir", str(own_runs))
    env = {**os.environ, "STUDIO_RUNS_DIR": str(own_runs)}
    trains = [subprocess.Popen([sys.executable, "-m", "core", "train", *args, "--seed", str(s)], cwd=PROJECT_DIR,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for s in (0, 1)]
    for train in trains:
        train.communicate(timeout=600)
        assert train.returncode == 0
    sweep = run_cli_process("sweep", "--data", str(color_folder), "--sizes", "3", "4", "--frozen", "all",
                            "--epochs", "1", "--runs-dir", str(own_runs), env=env)
    assert sweep.returncode == 0, sweep.stderr
    time.sleep(1)
    stop.set()
    watcher.join()
    runs = [p for p in own_runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    trained = [r for r in runs if (r / "config.json").is_file()]
    assert len(trained) == 5 and 1 <= len(seen) <= len(trained), (len(seen), len(trained))


# ---------- what `make run` prints ----------

def test_tensorflow_c_plus_plus_log_lines_go_to_a_file_and_one_line_names_the_device(prepared, tmp_path,
                                                                                       skimage_images):
    """`core prepare` (what `make run` starts with) names the device in one line; a command that loads TensorFlow
    prints none of its C++ log lines (oneDNN, cuInit) and they land in the studio home's log."""
    env = {**os.environ, "STUDIO_HOME": str(tmp_path / "home")}
    Image.fromarray(skimage_images["coffee"]).save(tmp_path / "coffee.png")
    prepare = run_cli_process("prepare", env=env)
    assert prepare.returncode == 0, prepare.stderr
    assert prepare.stdout.splitlines()[0].startswith("TensorFlow will run on the CPU (no GPU found); its own log "
                                                     "lines go to")
    loads_tf = run_cli_process("imagenet", str(tmp_path / "coffee.png"), env=env)
    assert loads_tf.returncode == 0 and "espresso" in loads_tf.stdout, loads_tf.stderr
    native = re.compile(r"^(WARNING: All log messages|[IWEF]\d{4} )", re.M)
    assert not native.search(prepare.stderr + prepare.stdout + loads_tf.stderr + loads_tf.stdout)
    assert native.search((tmp_path / "home" / "logs" / "native.log").read_text())
