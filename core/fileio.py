"""Atomic file writes and hashing: a file is written to a temporary name, then renamed."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: str | Path):
    """Hold an exclusive lock on path (created if missing) for the block: one process at a time."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_manifest(root: str | Path) -> dict[str, str]:
    """Relative path -> SHA-256 for every file under root (manifest.json itself excluded)."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json" and not p.name.endswith(".tmp")
    }


_SETTLED_NS = 2_000_000_000
_digests: dict[tuple, str] = {}


def settled_sha256(path: Path) -> str:
    """sha256_file, remembered per (path, inode, size, mtime, ctime) so that verifying the same runs
    on every Streamlit rerun does not re-read them. Any write changes ctime. A file touched in the
    last two seconds is hashed and not remembered: a write within the same timestamp tick would not
    show in its stat (git's "racy clean" problem)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _digests:
        return _digests[key]
    digest = sha256_file(path)
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS:
        if len(_digests) > 100_000:
            _digests.clear()
        _digests[key] = digest
    return digest


def manifest_problems(root: str | Path) -> list[str]:
    """What does not match root/manifest.json: missing, changed or unreadable files."""
    root = Path(root)
    try:
        expected = read_json(root / "manifest.json")
    except (OSError, ValueError):
        return ["manifest.json is missing or unreadable"]
    problems = []
    for rel, digest in expected.items():
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel} is missing")
        elif settled_sha256(p) != digest:
            problems.append(f"{rel} does not match its SHA-256")
    return problems
