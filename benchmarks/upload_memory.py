"""What a big zip upload costs the Streamlit server in memory: a real server, a real Chromium.

    .venv/bin/python -m benchmarks.upload_memory              # a zip of about 1,000 MB of phone photos
    .venv/bin/python -m benchmarks.upload_memory --mb 300

The zip holds copies of a few 12 MP JPEGs (stored, not compressed: JPEGs do not compress) in two
class folders. Chromium uploads it through the Data page; the server's resident memory is sampled
every 0.1 s from before the upload until the page shows the validation report, and again after.
Needs Debian's chromium. One JSON line; RELIABILITY.md holds a measured run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import psutil

from benchmarks.photos import make_photos
from core import paths

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def make_zip(work: Path, megabytes: int) -> Path:
    photos = sorted(make_photos(work / "photos", 3).rglob("*.jpg"))
    out = work / "phone-photos.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        i = 0
        while out.stat().st_size < megabytes * 1024**2:
            photo = photos[i % len(photos)]
            zf.write(photo, f"phone-photos/{photo.parent.name}/{i:04d}.jpg")
            i += 1
            if i % 50 == 0:
                zf.fp.flush()
    return out


def start_server(home: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "STUDIO_HOME": str(home)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port",
                                 str(port), "--server.address", "127.0.0.1"], cwd=paths.PROJECT_DIR, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("streamlit did not start")


class Sampler(threading.Thread):
    """The server's resident memory every 0.1 s; `peak` in MB."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.running = psutil.Process(pid), 0.0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss / 1024**2)
            time.sleep(0.1)


def upload(url: str, archive: Path, pid: int, screenshot: str | None, timeout_s: int) -> dict:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/data")
        expect(page.get_by_text("Validation report: digits (demo)")).to_be_visible(timeout=180_000)
        page.get_by_text("Upload a zip of class folders").click()
        page.wait_for_timeout(2000)
        before = psutil.Process(pid).memory_info().rss / 1024**2
        sampler = Sampler(pid)
        sampler.start()
        start = time.perf_counter()
        page.locator('input[type="file"]').first.set_input_files(str(archive))
        try:
            expect(page.get_by_text(f"Validation report: {archive.name}")).to_be_visible(timeout=timeout_s * 1000)
        except AssertionError:
            if screenshot:
                page.screenshot(path=screenshot)  # what the page showed instead
            raise
        seconds = time.perf_counter() - start
        page.wait_for_timeout(5000)
        sampler.running = False
        after = psutil.Process(pid).memory_info().rss / 1024**2
        if screenshot:
            page.set_viewport_size({"width": 1280, "height": 1400})
            page.screenshot(path=screenshot)
        browser.close()
    return {"before_mb": round(before), "peak_mb": round(sampler.peak), "after_mb": round(after),
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1000, help="size of the zip to upload")
    parser.add_argument("--screenshot", default=None, help="save the Data page after the import as this PNG")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds to wait for the validation report")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        work = Path(tmp)
        archive = make_zip(work, args.mb)
        log = work / "streamlit.log"
        proc, url = start_server(work / "home", log)
        try:
            result = upload(url, archive, proc.pid, args.screenshot, args.timeout)
        except Exception:
            print(log.read_text()[-4000:], file=sys.stderr)  # what the server said, for the failure
            raise
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print(json.dumps({"measure": "zip upload", "zip_mb": round(archive.stat().st_size / 1024**2),
                          **result}), flush=True)


if __name__ == "__main__":
    main()
