"""Shared fixtures. The studio home is a fresh temporary folder per test session, so the
bundled model is converted for real once per session and nothing touches the user's files."""

import os
import tempfile
from pathlib import Path

os.environ["STUDIO_HOME"] = tempfile.mkdtemp(prefix="studio-test-")
os.environ.pop("STUDIO_RUNS_DIR", None)
os.environ.pop("TFHUB_CACHE_DIR", None)
os.environ.pop("KERAS_HOME", None)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = PROJECT_DIR / "test-artifacts"


@pytest.fixture(scope="session")
def lite0():
    """The real bundled EfficientNet-Lite0 with ImageNet weights (converted on first use)."""
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


@pytest.fixture(scope="session")
def color_folder(tmp_path_factory):
    return make_color_folders(tmp_path_factory.mktemp("colors") / "colors")


@pytest.fixture(scope="session")
def prepared():
    """`prepare` done once: the converted TFLite files exist, so every block frozen runs on TFLite whatever
    order the tests run in."""
    from core.backbones import bundled

    return bundled.prepare()


@pytest.fixture(scope="session")
def trained_run(color_folder, prepared):
    """One completed run trained by a real worker process, shared by many tests (every block frozen, on
    the converted TFLite forward)."""
    from core import jobs
    from core.config import TrainConfig

    config = TrainConfig(dataset=str(color_folder), per_class=10, epochs=3, val_fraction=0.3, test_fraction=0.2)
    run_id = jobs.submit(config)
    status = jobs.wait(run_id, timeout=600)
    assert status["state"] == "completed", status
    return run_id


def square_image(rng, size=224, square=56, at=None):
    """Dark noisy background with one bright square; returns (image, (top, left))."""
    img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    top, left = at if at is not None else rng.integers(0, size - square, 2)
    img[top:top + square, left:left + square] = 255
    return img, (int(top), int(left))


@pytest.fixture(scope="session")
def square_run(tmp_path_factory):
    """A run whose classes are decided by one bright square: 'square' vs 'plain'."""
    from core import jobs
    from core.config import TrainConfig

    root = tmp_path_factory.mktemp("squares") / "squares"
    rng = np.random.default_rng(1)
    for label in ("square", "plain"):
        (root / label).mkdir(parents=True)
        for i in range(16):
            img = square_image(rng)[0] if label == "square" else rng.integers(0, 60, (224, 224, 3)).astype(np.uint8)
            Image.fromarray(img).save(root / label / f"{label}_{i:02d}.png")
    run_id = jobs.submit(TrainConfig(dataset=str(root), per_class=16, epochs=8, frozen_blocks=16, val_fraction=0.25,
                                     test_fraction=0.0))
    status = jobs.wait(run_id, timeout=600)
    assert status["state"] == "completed", status
    return run_id


def wait_for(predicate, timeout=600, poll=0.3) -> bool:
    """Poll until predicate() is true; False after timeout seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False
