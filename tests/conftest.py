"""Shared fixtures. Each test process gets a fresh temporary studio home, so nothing touches the user's
files. The converted model store is made once per test session and shared: with pytest-xdist the controller
converts it in the background while the workers start, and the store's own lock makes a worker that needs
it first wait instead of converting again."""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from core.runs.store import RunStore
from tests.helpers import (
    PROJECT_DIR,
    THREAD_CAPS,
    make_color_folders,
    start_ray_cluster,
    stop_ray_cluster,
    train_in_process,
    without_thread_caps,
)

_IS_WORKER = "PYTEST_XDIST_WORKER" in os.environ
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:  # one thread each: parallel workers share 2 cores
    for name in THREAD_CAPS:
        os.environ.setdefault(name, "1")
os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="studio-test-")
if not _IS_WORKER:  # the controller (or a plain run) picks the store and the shared folder; workers inherit them
    os.environ["STUDIO_MODELS_DIR"] = tempfile.mkdtemp(prefix="studio-test-models-")
    os.environ["STUDIO_TEST_SHARED"] = tempfile.mkdtemp(prefix="studio-test-shared-")
    # The test cluster runs with Ray's token authentication on, as the README asks of a real one: its nodes and
    # every driver (the test processes, the dispatcher) inherit the token.
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
for name in ("STUDIO_RUNS_DIR", "TFHUB_CACHE_DIR", "KERAS_HOME"):
    os.environ.pop(name, None)


def pytest_sessionstart(session):
    """With workers, the controller converts the store in the background with every core."""
    if getattr(session.config.option, "numprocesses", None) and not _IS_WORKER:
        env = without_thread_caps(os.environ)
        session.config._studio_prepare = subprocess.Popen(  # noqa: SLF001 - kept to be waited for at the end
            [sys.executable, "-m", "core", "prepare"], cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)  # if it fails, the first worker that needs the store converts it and says why


# The order in which `make test` hands tests to its two workers (xdist's load scheduling, in chunks): the
# browser tests first (the longest; their server needs the store only after its first pages), then the modules
# that need no converted model or only its first quick step, which run while the controller converts the rest
# of the store, then the others, longest first, so that the two workers finish together. A module not named
# here runs last. (Measured: whole modules to a worker, --dist loadfile, took 659 s against 583 and 610 s.)
ORDER = ("test_browser.py", "test_cluster.py", "test_security.py",
         "test_architecture.py", "test_data.py", "test_reliability_inputs.py", "test_hub_backbones.py", "test_heads.py",
         "test_checkpoint.py", "test_plan.py", "test_run_summary.py", "test_photos.py", "test_cli.py",
         "test_numpy_head.py", "test_training.py", "test_experiments.py", "test_analysis.py", "test_compare.py",
         "test_labelling.py",
         "test_app_pages.py",
         "test_reliability_sessions.py", "test_reliability_runs.py", "test_views.py", "test_backbones.py",
         "test_lr_find.py", "test_benchmarks.py", "test_batch.py", "test_trust.py")


def pytest_collection_modifyitems(config, items):
    """ORDER, unless pytest-randomly shuffles (without `-p no:randomly`): then its order stands."""
    if config.pluginmanager.hasplugin("randomly") and config.getoption("randomly_reorganize", False):
        return
    items.sort(key=lambda item: ORDER.index(item.path.name) if item.path.name in ORDER else len(ORDER))


def _cpu_seconds() -> float:
    """CPU time of this process and of its children it has reaped (workers, servers, CLI processes)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Where the suite's CPU goes: each test's CPU time travels with its report (to the controller too)."""
    start = _cpu_seconds()
    yield
    item.user_properties.append(("cpu_seconds", round(_cpu_seconds() - start, 1)))


_CPU_BY_TEST: dict[str, float] = {}


def pytest_runtest_logreport(report):
    if report.when == "call":
        for key, value in report.user_properties:
            if key == "cpu_seconds":
                _CPU_BY_TEST[report.nodeid] = value


def pytest_terminal_summary(terminalreporter):
    if not _CPU_BY_TEST or _IS_WORKER:
        return
    terminalreporter.write_sep("=", f"CPU per test: {sum(_CPU_BY_TEST.values()):.0f} s in the test calls, "
                                    f"slowest 10 (with the children each test reaped)")
    for nodeid, seconds in sorted(_CPU_BY_TEST.items(), key=lambda kv: -kv[1])[:10]:
        terminalreporter.write_line(f"{seconds:8.1f}s cpu {nodeid}")


def pytest_sessionfinish(session):
    """Remove this process's studio home; the controller also removes the shared model store and folder."""
    shutil.rmtree(os.environ["STUDIO_HOME"], ignore_errors=True)
    if not _IS_WORKER:
        preparing = getattr(session.config, "_studio_prepare", None)
        if preparing is not None:
            preparing.wait()
        stop_ray_cluster(Path(os.environ["STUDIO_TEST_SHARED"]) / "ray-cluster")
        shutil.rmtree(os.environ["STUDIO_MODELS_DIR"], ignore_errors=True)
        shutil.rmtree(os.environ["STUDIO_TEST_SHARED"], ignore_errors=True)


@pytest.fixture(scope="session")
def prepared():
    """`prepare` done once: the converted TFLite files exist, so every block frozen runs on TFLite whatever
    order the tests run in."""
    from core.backbones import bundled

    return bundled.prepare()


@pytest.fixture(scope="session")
def lite0():
    """The real bundled EfficientNet-Lite0 with ImageNet weights."""
    from core.backbones import load_backbone

    return load_backbone("efficientnet_lite0")


@pytest.fixture(scope="session")
def lite0_hub():
    """The bundled weights through hub.KerasLayer (the TF Hub-format export)."""
    from core.backbones import load_backbone

    return load_backbone("efficientnet_lite0_hub")


@pytest.fixture(scope="session")
def skimage_images():
    """Reference photos shipped inside scikit-image, as RGB uint8 arrays."""
    from skimage import data

    return {name: getattr(data, name)() for name in ("chelsea", "coffee", "rocket")}


@pytest.fixture
def no_network(monkeypatch):
    """Name resolution fails as on a machine without network (nothing leaves this machine)."""
    import socket

    def refuse(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (test: network absent)")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def own_model_store(prepared, tmp_path, monkeypatch):
    """A private copy of the converted store, for tests that damage it: other test processes share the
    original."""
    from core import paths

    copy = tmp_path / "models"
    shutil.copytree(paths.models_dir(), copy, ignore=shutil.ignore_patterns(".lock", ".convert-*", ".export-*"))
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(copy))
    return copy


@pytest.fixture
def own_runs(tmp_path, monkeypatch):
    """A run store of this test's own, empty; worker processes inherit it through the environment."""
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


@pytest.fixture
def empty_feature_store(tmp_path, monkeypatch):
    """A block-vector store of this test's own, empty: vectors another test stored for the same images
    would otherwise replace what the test means to compute."""
    from core.features import blocks

    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))  # every cache folder is read at each use
    return blocks.CACHE


@pytest.fixture
def workers_in_process(monkeypatch):
    """Queued runs train in this process, in place of worker processes: for tests of what a run does, not of
    the worker process (tests/test_training.py keeps real ones)."""
    from core.runs import jobs
    from tests.helpers import run_queued_in_process

    monkeypatch.setattr(jobs, "ensure_workers", run_queued_in_process)


def made_once(name: str, build) -> Path:
    """A folder that `build(folder)` fills once per test session, whichever test process asks first; the
    others wait for it (xdist's workers share it, as they share the converted store)."""
    from core.fileio import file_lock

    folder = Path(os.environ["STUDIO_TEST_SHARED"]) / name
    with file_lock(folder.with_name(f"{name}.lock")):
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            (folder / ".made").touch()
    return folder


def shared_run(name: str, make_config) -> str:
    """A run trained once per test session (`make_config(folder)` gives its config, with the data it makes
    in that folder), copied into this process's run store; its id."""
    from core import paths

    def train(folder: Path) -> None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("STUDIO_RUNS_DIR", str(folder / "runs"))
            run_id = train_in_process(make_config(folder))
            _assert_completed(run_id)
        (folder / "run_id").write_text(run_id)

    folder = made_once(name, train)
    run_id = (folder / "run_id").read_text()
    if not (paths.runs_dir() / run_id).exists():
        shutil.copytree(folder / "runs" / run_id, paths.runs_dir() / run_id)
    return run_id


@pytest.fixture
def ray_cluster(request, prepared):
    """(address, folder) of a real two-node Ray cluster on this machine, started once per test session by
    the first test that asks (one CPU a node) and stopped after the last (its daemons would otherwise idle
    on the cores the other tests need; the session's end stops it in any case). One test holds it at a time,
    so a test sees only its own runs on it, and each test's process leaves the cluster when it is done."""
    import ray

    from core.fileio import file_lock
    from core.runs.remote import connect

    folder = made_once("ray-cluster", start_ray_cluster)
    with file_lock(folder.with_name("ray-cluster.busy")):
        address = (folder / "address").read_text()
        connect(address)
        try:
            yield address, folder
        finally:
            ray.shutdown()
            done = int((folder / "done").read_text()) + 1 if (folder / "done").is_file() else 1
            (folder / "done").write_text(str(done))
            if done == sum("ray_cluster" in item.fixturenames for item in request.session.items):
                stop_ray_cluster(folder)


@pytest.fixture(scope="session")
def color_folder():
    return made_once("colors", lambda folder: make_color_folders(folder / "colors")) / "colors"


@pytest.fixture(scope="session")
def trained_run(color_folder, prepared):
    """One completed run shared by many tests (every block frozen, on the converted TFLite forward)."""
    from core.training.config import TrainConfig

    return shared_run("trained-run", lambda _: TrainConfig(dataset=str(color_folder), per_class=10, epochs=3,
                                                           val_fraction=0.3, test_fraction=0.2))


def _square_config(folder: Path):
    """Classes decided by one bright square: 'square' vs 'plain'."""
    import numpy as np
    from PIL import Image

    from core.training.config import TrainConfig
    from tests.helpers import square_image

    root = folder / "squares"
    rng = np.random.default_rng(1)
    for label in ("square", "plain"):
        (root / label).mkdir(parents=True)
        for i in range(16):
            img = square_image(rng)[0] if label == "square" else rng.integers(0, 60, (224, 224, 3)).astype(np.uint8)
            Image.fromarray(img).save(root / label / f"{label}_{i:02d}.png")
    return TrainConfig(dataset=str(root), per_class=16, epochs=8, frozen_blocks=16, val_fraction=0.25,
                       test_fraction=0.0)


@pytest.fixture(scope="session")
def square_run(prepared):
    """A run whose classes are decided by one bright square: 'square' vs 'plain'."""
    return shared_run("square-run", _square_config)


def _assert_completed(run_id: str) -> None:

    status = RunStore.default().load(run_id).status
    assert status["state"] == "completed", status
