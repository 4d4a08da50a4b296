"""Atomic file writes and hashing: a file is written to a temporary name, then renamed."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import filelock


@contextlib.contextmanager
def file_lock(path: str | Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on path (created if missing) for the block: one process at a time.

    filelock uses flock on POSIX and msvcrt on Windows, so the queue runs on both. With wait=False the block
    gets False at once when another process holds the lock, else True.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path), timeout=-1 if wait else 0)
    try:
        lock.acquire()
    except filelock.Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def not_regular(path: str | Path) -> str | None:
    """What path is when it is not a regular file, without opening it (a FIFO would block the reader for good):
    "a FIFO (named pipe)", "a socket", "a folder", ..., or "missing"; None for a regular file. Links are followed."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


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


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV-injection rule


def csv_cell(value):
    """A value as a CSV cell that a spreadsheet shows as text, never runs: a string starting with = + - @, a tab or a
    carriage return gets a leading single quote (so does one starting with a quote, so that csv_value can undo it
    exactly). Numbers stay numbers."""
    return "'" + value if isinstance(value, str) and value.startswith((*_FORMULA_STARTS, "'")) else value


def csv_value(cell: str) -> str:
    """The text csv_cell was given."""
    return cell[1:] if cell.startswith("'") else cell


def csv_text(header: list[str], rows) -> str:
    """Every CSV the studio writes: the header, then the rows, each cell through csv_cell."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def csv_rows(text: str) -> list[list[str]]:
    """A CSV the studio wrote, read back cell by cell as the text that went in."""
    return [[csv_value(c) for c in row] for row in csv.reader(io.StringIO(text))]


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
