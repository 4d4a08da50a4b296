"""One real-browser walk through the app: Playwright driving Debian's Chromium, headless."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ARTIFACTS_DIR, PROJECT_DIR

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                reason="Debian's chromium is not installed (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    runs_dir: str


@contextlib.contextmanager
def serve(folder: Path):
    """A real Streamlit server on a free port, its runs in folder/runs, its log in folder/streamlit.log."""
    port = free_port()
    env = {**os.environ, "STUDIO_RUNS_DIR": str(folder / "runs")}
    log = open(folder / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1"], cwd=PROJECT_DIR, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start")
    try:
        yield Server(url, proc.pid, env["STUDIO_RUNS_DIR"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("server")) as running:
        yield running


def settle(page, timeout=120_000):
    """Wait until Streamlit has finished running the script."""
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
    page.wait_for_timeout(500)


def check_page(page, name):
    """No exception on the page; a screenshot of the whole page at 1280 px wide."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    measure = "() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 800"
    height = 0
    for _ in range(10):  # grow the viewport until the page stops growing (images load late)
        new = page.evaluate(measure)
        if new <= height:
            break
        height = new
        page.set_viewport_size({"width": 1280, "height": min(max(800, height + 40), 8000)})
        page.wait_for_timeout(1500)  # let plotly redraw at the new size
    page.screenshot(path=str(ARTIFACTS_DIR / f"{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})
    assert page.locator('[data-testid="stException"]').count() == 0, f"exception shown on {name}"
    assert "Traceback" not in page.content()


def test_walk_through_the_app(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    digit = tmp_path / "digit.png"
    from sklearn.datasets import load_digits

    img = load_digits().images[3]  # a '3'
    Image.fromarray(np.pad(255 - (img / 16 * 255).astype(np.uint8), 2, constant_values=255)).save(digit)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url)
        expect(page.get_by_text("Start with the demo")).to_be_visible(timeout=120_000)
        settle(page)
        check_page(page, "1-home")

        page.get_by_role("link", name="Data").first.click()
        expect(page.get_by_text("Validation report: digits (demo)")).to_be_visible(timeout=120_000)
        settle(page)
        expect(page.get_by_text("200 images - 11% of 1,797")).to_be_visible()
        check_page(page, "2-data")

        page.get_by_role("link", name="Analyze").first.click()
        page.get_by_role("button", name="Analyze").click()
        expect(page.get_by_text("Best block")).to_be_visible(timeout=300_000)
        settle(page)
        assert page.locator(".js-plotly-plot").count() == 2
        check_page(page, "2b-analyze")

        page.get_by_role("link", name="Train").first.click()
        expect(page.get_by_text("Trainable parameters")).to_be_visible(timeout=120_000)
        settle(page)
        check_page(page, "3-train")
        page.get_by_role("button", name="Train").click()
        expect(page.get_by_text("Done in")).to_be_visible(timeout=600_000)
        settle(page)
        check_page(page, "4-train-done")

        page.get_by_role("link", name="Results").first.click()
        expect(page.get_by_text("Validation accuracy").first).to_be_visible(timeout=120_000)
        settle(page)
        expect(page.get_by_text("Confusion matrix (validation)")).to_be_visible()
        assert page.locator(".js-plotly-plot").count() >= 3
        check_page(page, "5-results")

        page.get_by_role("link", name="Activations").first.click()
        expect(page.get_by_text("Feature maps", exact=True)).to_be_visible(timeout=120_000)
        settle(page)
        check_page(page, "6-activations")

        page.get_by_role("link", name="Predict").first.click()
        expect(page.get_by_text("Drop one or more images")).to_be_visible(timeout=120_000)
        settle(page)
        page.locator('input[type="file"]').first.set_input_files(str(digit))
        expect(page.get_by_text("digit.png:").first).to_be_visible(timeout=120_000)
        settle(page)
        check_page(page, "7-predict")
        browser.close()



def test_a_fresh_servers_first_request_can_be_a_page(tmp_path):
    """A bookmark to a page, opened right after the server starts, gets that page working, not
    Streamlit's old multipage mode (which a folder named pages/ beside the entry script turns on)."""
    from playwright.sync_api import expect, sync_playwright

    with serve(tmp_path) as fresh, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{fresh.url}/data")
        expect(page.get_by_text("Validation report: digits (demo)")).to_be_visible(timeout=120_000)
        page.get_by_text("Share of the dataset").click()  # a rerun
        settle(page)
        expect(page.get_by_text("Share of every class (%)")).to_be_visible(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()


def test_uploads_without_the_xsrf_token_are_refused(server):
    """XSRF protection stays on: an upload from another origin (no token cookie) gets 403."""
    import urllib.error

    body = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nhello\r\n--x--\r\n'
    request = urllib.request.Request(f"{server.url}/_stcore/upload_file/some-session/some-file", data=body,
                                     method="PUT", headers={"Content-Type": "multipart/form-data; boundary=x"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403 and b"XSRF" in refused.value.read()

# Memory over time, on the same server: reruns of the results page, then consecutive trainings.
# CI uses the counts below; RELIABILITY.md reports a run with STUDIO_SOAK_RERUNS=200 STUDIO_SOAK_TRAININGS=10.
RERUNS = int(os.environ.get("STUDIO_SOAK_RERUNS", "20"))
TRAININGS = int(os.environ.get("STUDIO_SOAK_TRAININGS", "2"))


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1024**2


def live_worker_children(pid: int) -> list:
    import psutil

    return [c for c in psutil.Process(pid).children(recursive=True)
            if c.status() != psutil.STATUS_ZOMBIE and "worker" in " ".join(c.cmdline())]


def test_server_memory_stays_flat_and_workers_exit(server, monkeypatch):
    import json

    from playwright.sync_api import expect, sync_playwright

    from core.runs import list_runs
    from tests.conftest import wait_for

    monkeypatch.setenv("STUDIO_RUNS_DIR", server.runs_dir)
    figures = {"reruns": RERUNS, "trainings": TRAININGS}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{server.url}/results")
        expect(page.get_by_text("Validation accuracy").first).to_be_visible(timeout=120_000)
        settle(page)
        toggle = page.get_by_text("Row-normalised (recall per class)")
        warm_up = max(10, RERUNS // 10)
        for i in range(RERUNS):
            toggle.click()  # every click reruns the whole results page
            settle(page)
            if i + 1 == warm_up:
                figures["rerun_rss_after_warm_up_mb"] = rss_mb(server.pid)
        figures["rerun_rss_end_mb"] = rss_mb(server.pid)
        check_page(page, "8-results-after-reruns")

        page.goto(f"{server.url}/train")
        expect(page.get_by_text("Trainable parameters")).to_be_visible(timeout=120_000)
        settle(page)
        for i in range(TRAININGS):
            before = {r.id for r in list_runs(verify=False)}
            page.get_by_role("button", name="Train").click()
            assert wait_for(lambda: {r.id for r in list_runs(verify=False)} - before, timeout=60)
            (new,) = {r.id for r in list_runs(verify=False)} - before
            assert wait_for(lambda: next(r for r in list_runs(verify=False) if r.id == new).state == "completed",
                            timeout=600)
            expect(page.get_by_text(f"Run {new}")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Done in")).to_be_visible(timeout=60_000)
            settle(page)
            assert wait_for(lambda: not live_worker_children(server.pid), timeout=30), "the worker did not exit"
            if i == 0:
                figures["training_rss_after_first_mb"] = rss_mb(server.pid)
        figures["training_rss_end_mb"] = rss_mb(server.pid)
        browser.close()
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    (ARTIFACTS_DIR / "memory.json").write_text(json.dumps(figures, indent=1))
    assert figures["rerun_rss_end_mb"] <= 1.10 * figures["rerun_rss_after_warm_up_mb"], figures
    assert figures["training_rss_end_mb"] <= 1.10 * figures["training_rss_after_first_mb"], figures
