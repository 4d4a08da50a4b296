"""ONNX Runtime Web, the engine the web-page export inlines: fetched once from the npm registry, pinned and checked.

Why ONNX Runtime Web rather than TensorFlow.js: the page runs the very ONNX file the ONNX export writes and checks
in ONNX Runtime, so one conversion serves both; TensorFlow.js would need a second converter (the tensorflowjs
package) and a second check. Only two files of the package are used: the ES-module bundle with the WebAssembly
backend, and its WebAssembly binary (single-threaded here: a page opened from file:// cannot share memory
between threads).
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from core import paths
from core.errors import StudioError
from core.fileio import sha256_file

PACKAGE = "onnxruntime-web"
VERSION = "1.30.0"
FILES = {  # file in the package's dist/ -> its SHA-256 in the pinned release
    "ort.wasm.bundle.min.mjs": "11e64bd8ffe11bd1a2a2f0d6275fdfbbba7262f0b76b99b53d228a8a22ef3d90",
    "ort-wasm-simd-threaded.wasm": "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
}
NPM_TIMEOUT_S = 300


def runtime_dir() -> Path:
    return paths.models_dir() / "vendor" / f"{PACKAGE}-{VERSION}"


def _intact(folder: Path) -> bool:
    return all((folder / name).is_file() and sha256_file(folder / name) == digest for name, digest in FILES.items())


def ensure_runtime() -> Path:
    """The folder holding the pinned files, fetched with `npm pack` the first time; StudioError saying what to do
    when npm or the registry is not there, or the files do not match the pinned release."""
    folder = runtime_dir()
    if _intact(folder):
        return folder
    if shutil.which("npm") is None:
        raise StudioError(f"The web page export needs {PACKAGE}@{VERSION} from the npm registry, and npm is not "
                          f"installed: install it (Debian: apt-get install npm) and export again.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as work:
        _fetch(Path(work))
        unpacked = Path(work) / "files"
        if not _intact(unpacked):
            raise StudioError(f"The {PACKAGE}@{VERSION} files fetched from npm do not match the pinned release's "
                              f"SHA-256; nothing was kept.")
        shutil.rmtree(folder, ignore_errors=True)
        unpacked.rename(folder)
    return folder


def _fetch(work: Path) -> None:
    """npm pack the pinned version into work/, then keep the two files in work/files/."""
    try:
        done = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=work, capture_output=True,
                              text=True, timeout=NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise StudioError(f"npm did not fetch {PACKAGE}@{VERSION} within {NPM_TIMEOUT_S} s; check the connection "
                          f"to the npm registry and export again.") from exc
    if done.returncode != 0:
        raise StudioError(f"npm could not fetch {PACKAGE}@{VERSION} ({done.stderr.strip()[-300:]}); check the "
                          f"connection to the npm registry and export again.")
    (work / "files").mkdir()
    with tarfile.open(next(work.glob("*.tgz"))) as archive:
        for name in FILES:
            member = archive.extractfile(f"package/dist/{name}")
            if member is None:
                raise StudioError(f"The onnxruntime-web package has no regular file dist/{name}; export again.")
            (work / "files" / name).write_bytes(member.read())
