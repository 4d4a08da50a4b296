"""What the test modules share: small data the tests make, waiting, the CLI (in process and as one real
process), runs trained in process, AppTest pages and the real browser. Test modules import from here,
never from each other."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.runs.store import RunStore

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = PROJECT_DIR / "test-artifacts"

# Parallel test processes run their TensorFlow on one thread each; a server stands for a user's machine and
# the controller's conversion runs alone, so those get every core.
THREAD_CAPS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def without_thread_caps(env) -> dict:
    return {k: v for k, v in env.items() if k not in THREAD_CAPS}


# ---------- small data the tests make ----------

COLORS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 60, 220)}


def make_color_folders(root: Path, per_class: int = 10, size: int = 24) -> Path:
    """Solid-colour class folders (as TF Hub's own tests use), each image a slightly different shade
    with a little noise, so there are no duplicates and the classes are easy but not identical."""
    rng = np.random.default_rng(0)
    for label, color in COLORS.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            noise = rng.integers(-12, 13, (size, size, 3))
            pixels = np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / label / f"{label}_{i:02d}.png")
    return root


def square_image(rng, size=224, square=56, at=None):
    """Dark noisy background with one bright square; returns (image, (top, left))."""
    img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    top, left = at if at is not None else rng.integers(0, size - square, 2)
    img[top:top + square, left:left + square] = 255
    return img, (int(top), int(left))


def wait_for(predicate, timeout=600, poll=0.3) -> bool:
    """Poll until predicate() is true; False after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


# ---------- runs ----------

def slow_config(folder):
    """Epochs that come steadily (about 0.1 s each on cached cuts) and would go on for a while: a run to
    cancel or kill while it trains."""
    from core.training.config import TrainConfig

    return TrainConfig(dataset=str(folder), per_class=10, epochs=300, batch_size=2, val_fraction=0.3,
                       test_fraction=0.0, frozen_blocks=16, image_size=64)


def train_in_process(config, store=None) -> str:
    """A run created in the run store (default: the environment's) and trained by the worker's own `execute`, in
    this process; its id. The worker process adds nothing here (tests/test_training.py keeps real workers for
    cancel and kill)."""
    from core.runs.jobs import queue_lock
    from core.runs.worker import execute

    store = store or RunStore.default()
    with queue_lock(store):  # as a worker holds it: a worker another test started cannot take this run meanwhile
        run = store.create(config.validate())
        execute(store, run.id)
    return run.id


def run_queued_in_process(store) -> int:
    """In place of jobs.ensure_workers(store): train every queued run here, oldest first; how many ran."""
    from core.runs.jobs import queue_lock, queued_runs
    from core.runs.worker import execute

    with queue_lock(store):
        queue = queued_runs(store)
        for run in queue:
            execute(store, run.id)
    return len(queue)


# ---------- the command line ----------

@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str) -> CliResult:
    """`python -m core ARGS` called in process (core.cli.main)."""
    from core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_process(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m core ARGS` as a real process: for the one test that checks the CLI as users start it."""
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=PROJECT_DIR, env=env, capture_output=True,
                          text=True, timeout=timeout)


# ---------- AppTest pages ----------

APPTEST_TIMEOUT = 240  # TensorFlow imports slowly


def open_page(page: str | None = None, **state):
    """The app through AppTest, on `page` (a file in app_pages/), with session state set first."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT_DIR / "streamlit_app.py"), default_timeout=APPTEST_TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def text_of(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


# ---------- the real browser ----------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
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
def serve(folder: Path, **extra_env: str):
    """A real Streamlit server on a free port, its runs in folder/runs, its log in folder/streamlit.log."""
    port = free_port()
    env = {**without_thread_caps(os.environ), "STUDIO_RUNS_DIR": str(folder / "runs"), **extra_env}
    with open(folder / "streamlit.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port),
                                 "--server.address", "127.0.0.1"], cwd=PROJECT_DIR, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        if not wait_for(lambda: _healthy(url), timeout=120, poll=0.5):
            proc.kill()
            pytest.fail("streamlit did not start")
        try:
            yield Server(url, proc.pid, env["STUDIO_RUNS_DIR"])
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 800):
    """A Playwright page in Debian's headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def settle(page, timeout=120_000):
    """Wait until Streamlit has finished running the script."""
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
    page.wait_for_timeout(500)


def wait_for_title(page, title: str, timeout=120_000):
    """Wait for the page whose title (its h1) is exactly `title`: only that page shows it."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1, name=title, exact=True)).to_be_visible(timeout=timeout)


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
        page.wait_for_timeout(600)  # let plotly redraw at the new size
    page.screenshot(path=str(ARTIFACTS_DIR / f"{name}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})
    assert page.locator('[data-testid="stException"]').count() == 0, f"exception shown on {name}"
    assert "Traceback" not in page.content()


# ---------- a Ray cluster on this machine ----------

RAY = Path(sys.executable).with_name("ray")
NODE_TIMEOUT = 90
# The head declares a node dead after 3 missed checks a second apart (Ray's default waits longer), so a test
# that kills a node sees it gone within seconds.
HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                 "RAY_health_check_failure_threshold": "3"}


def start_ray_node(home: Path, log: Path, *, head_port: int | None = None, address: str = "", core: int | None = None,
                   **env: str) -> subprocess.Popen:
    """`ray start --block` with one CPU on the loopback address: the node lives as long as this process
    (SIGTERM stops it and its children). The node keeps its own studio home (its caches) and shares the
    converted model store, as the test processes do. core: the node's processes run on this CPU core only
    (a benchmark's nodes each get a core of their own, as separate machines would)."""
    where = ["--head", "--port", str(head_port), "--include-dashboard", "false",
             "--ray-client-server-port", str(free_port())] if head_port else ["--address", address]
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*(["taskset", "-c", str(core)] if core is not None else []), str(RAY), "start", "--block", *where,
             "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
             "--object-store-memory", str(300 * 2**20), "--include-log-monitor", "false", "--disable-usage-stats"],
            env={**_own_home(os.environ), "STUDIO_HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", **env},
            cwd=PROJECT_DIR, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)


def _own_home(env) -> dict:
    """The environment without this process's own cache and run folders: a node keeps its own under its home
    (a test's empty_feature_store sets STUDIO_CACHE_DIR for this process alone)."""
    return {k: v for k, v in env.items() if k not in ("STUDIO_CACHE_DIR", "STUDIO_RUNS_DIR")}


def alive_ray_nodes() -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}


def start_ray_cluster(folder: Path) -> None:
    """A head and a second node; their address and `ray start` pids written into folder."""
    from core.runs.remote import connect

    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start_ray_node(folder / "head", folder / "head.log", head_port=port, **HEALTH_CHECKS)
    (folder / "pids").write_text(f"{head.pid}\n")
    assert wait_for(lambda: _answers(port), NODE_TIMEOUT), (folder / "head.log").read_text()[-2000:]
    connect(address)
    second = start_ray_node(folder / "second", folder / "second.log", address=address)
    (folder / "pids").write_text(f"{head.pid}\n{second.pid}\n")
    assert wait_for(lambda: len(alive_ray_nodes()) == 2, NODE_TIMEOUT), (folder / "second.log").read_text()[-2000:]
    (folder / "address").write_text(address)


def stop_ray_cluster(folder: Path) -> None:
    """SIGTERM each `ray start --block` (it stops its node's processes), the second node first."""
    from core.runs.store import pid_alive

    pids = [int(p) for p in (folder / "pids").read_text().split()] if (folder / "pids").is_file() else []
    for pid in reversed(pids):
        stop_process_group(pid, alive=pid_alive)


def stop_process_group(pid: int, *, alive) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_for(lambda: not alive(pid), 30, poll=0.2):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
