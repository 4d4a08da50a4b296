"""Where the studio keeps its files. Everything lives under one home folder.

STUDIO_HOME (default: `.studio` in the project folder) holds `models/` (converted bundled
weights and the TF Hub-format export), `runs/`, `datasets/` (materialised demo data and
uploads), `cache/` (decoded images and feature vectors), `analyses/`, `health/` and
`tfhub_cache/` (TFHUB_CACHE_DIR, unless that is set already). STUDIO_RUNS_DIR, STUDIO_MODELS_DIR and
STUDIO_CACHE_DIR move one of them elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_DIR / "assets"


def studio_home() -> Path:
    return Path(os.environ.get("STUDIO_HOME", PROJECT_DIR / ".studio")).expanduser()


def models_dir() -> Path:
    """STUDIO_MODELS_DIR lets several homes share one converted store (parallel test processes do)."""
    return Path(os.environ.get("STUDIO_MODELS_DIR", studio_home() / "models")).expanduser()


def runs_dir() -> Path:
    return Path(os.environ.get("STUDIO_RUNS_DIR", studio_home() / "runs")).expanduser()


def datasets_dir() -> Path:
    return studio_home() / "datasets"


def tfhub_cache_dir() -> Path:
    return Path(os.environ.get("TFHUB_CACHE_DIR", studio_home() / "tfhub_cache")).expanduser()


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", studio_home() / "keras")).expanduser()


def cache_dir() -> Path:
    """Decoded images and feature vectors, kept to be read back (core.data.npy_cache). STUDIO_CACHE_DIR moves it
    (a test's own empty caches; a faster disk)."""
    return Path(os.environ.get("STUDIO_CACHE_DIR", studio_home() / "cache")).expanduser()


def analyses_dir() -> Path:
    return studio_home() / "analyses"


def health_dir() -> Path:
    return studio_home() / "health"


def native_log() -> Path:
    """Where TensorFlow's C++ log lines go (core.native_log), not to the terminal."""
    return studio_home() / "logs" / "native.log"
