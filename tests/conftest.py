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

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = PROJECT_DIR / "test-artifacts"


@pytest.fixture(scope="session")
def lite0():
    """The real bundled EfficientNet-Lite0 with ImageNet weights (converted on first use)."""
    from core.backbones import load_backbone

    return load_backbone("efficientnet_lite0")


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


def rgb(h, w, color):
    return np.full((h, w, 3), color, dtype=np.uint8)
