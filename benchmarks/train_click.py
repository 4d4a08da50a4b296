"""Issue 28's browser measure: on a real Streamlit server in Chromium, the default Train page's Train button
clicked, then the time until the page says "Done in", five times (the first in a cold studio home, whose demo
images are written and scanned first). The models must be prepared (`make prepare`).

    .venv/bin/python -m benchmarks.train_click
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from tests.helpers import browser_page, serve, settle, wait_for_title

CLICKS = 5


def main() -> None:
    from playwright.sync_api import expect

    seconds = []
    with serve(Path(tempfile.mkdtemp(prefix="train-click-"))) as server, browser_page() as page:
        for click in range(CLICKS):
            page.goto(f"{server.url}/train")
            wait_for_title(page, "Train")
            settle(page)
            start = time.perf_counter()
            page.get_by_role("button", name="Train", exact=True).click()
            expect(page.get_by_text("Done in")).to_be_visible(timeout=300_000)
            seconds.append(time.perf_counter() - start)
            print(json.dumps({"click": click + 1, "seconds_to_done": round(seconds[-1], 2)}), flush=True)
    print(json.dumps({"median_s": round(statistics.median(seconds), 2), "max_s": round(max(seconds), 2)}))


if __name__ == "__main__":
    main()
