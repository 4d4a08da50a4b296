"""One real-browser walk through the app: Playwright driving Debian's Chromium, headless."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "STUDIO_RUNS_DIR": str(tmp_path_factory.mktemp("browser-runs"))}
    log = open(tmp_path_factory.mktemp("logs") / "streamlit.log", "wb")
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
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


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
        page.goto(server)
        expect(page.get_by_text("Start with the demo")).to_be_visible(timeout=120_000)
        settle(page)
        check_page(page, "1-home")

        page.get_by_role("link", name="Data").first.click()
        expect(page.get_by_text("Validation report: digits (demo)")).to_be_visible(timeout=120_000)
        settle(page)
        expect(page.get_by_text("200 images - 11% of 1,797")).to_be_visible()
        check_page(page, "2-data")

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
