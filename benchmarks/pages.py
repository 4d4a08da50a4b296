"""The Data, Results and Predict pages at 20,000 images (issue 44), in Chromium on a real Streamlit server.

    python -m benchmarks.pages --home /tmp/scale-home-X --data /tmp/scale/photos-20000 [--shots /tmp/pages]

`--home` is a studio home in which `benchmarks.scale time --data ...` trained a run on `--data` (its runs folder
holds it); the server uses that home, so the feature store and caches are what a user has after training. Each
page is opened twice (first: the server's caches cold; second: as a user comes back to it) and timed from the
address (or the click) until Streamlit has finished the script; the server's peak RSS (its process tree, sampled
every 0.2 s) is printed with each. A full-page screenshot of each first visit goes to --shots. JSON lines."""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from pathlib import Path

from benchmarks.scale import make
from core.fileio import read_json
from tests.helpers import browser_page, serve, settle, wait_for_title


class Peak:
    """The server process tree's peak RSS, sampled in a thread."""

    def __init__(self, pid: int):
        import psutil

        self.top, self.mb, self.stop = psutil.Process(pid), 0.0, threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        import psutil

        while not self.stop.wait(0.2):
            try:
                tree = [self.top, *self.top.children(recursive=True)]
                self.mb = max(self.mb, sum(p.memory_info().rss for p in tree) / 2**20)
            except psutil.Error:
                pass


def _timed(name: str, visit, page, peak: Peak, shots: Path, first: bool) -> None:
    start = time.perf_counter()
    visit()  # returns once what the page is for is on it
    settle(page, timeout=600_000)
    seconds = time.perf_counter() - start
    if first:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    errors = page.locator("[data-testid='stException']").count()
    print(json.dumps({"page": name, "visit": "first" if first else "again", "seconds": round(seconds, 1),
                      "server_peak_rss_mb": round(peak.mb), "exceptions": errors}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--shots", type=Path, default=Path("/tmp/pages"))
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)
    run_id = next(r.name for r in sorted((args.home / "runs").glob("2*"))
                  if read_json(r / "dataset.json")["root"] == str(args.data))
    from playwright.sync_api import expect

    images = sum(1 for _ in args.data.rglob("*.jpg"))
    photo = make(args.shots / "upload", 1, seed=5, classed=False)
    upload = next(photo.rglob("*.jpg"))
    with serve(args.home, STUDIO_HOME=str(args.home)) as server, browser_page(1600, 1000) as page:
        peak = Peak(server.pid)

        def data_page():
            page.goto(f"{server.url}/data")
            wait_for_title(page, "Data")
            page.get_by_role("radiogroup", name="Source").get_by_text("Folder on this machine").click(timeout=120_000)
            folder = page.get_by_placeholder("/home/me/photos/pets")
            folder.fill(str(args.data), timeout=120_000)
            folder.press("Enter")
            page.get_by_role("button", name="Use this folder").click()
            expect(page.get_by_text(f"Validation report: {args.data}")).to_be_visible(timeout=600_000)
            expect(page.get_by_text(f"{images:,}", exact=True).first).to_be_visible(timeout=600_000)

        def results_page():
            page.goto(f"{server.url}/results?run={run_id}")
            wait_for_title(page, "Results")
            expect(page.get_by_text("Confusion matrix").first).to_be_visible(timeout=600_000)

        def predict_page():
            page.goto(f"{server.url}/predict?run={run_id}")
            wait_for_title(page, "Predict")
            settle(page)
            page.locator("input[type=file]").first.set_input_files(str(upload))
            expect(page.get_by_text(re.compile(r"^class_\d")).first).to_be_visible(timeout=600_000)  # its guess

        for first in (True, False):
            for name, visit in (("data", data_page), ("results", results_page), ("predict", predict_page)):
                _timed(name, visit, page, peak, args.shots, first)
        peak.stop.set()


if __name__ == "__main__":
    main()
