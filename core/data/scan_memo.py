"""What the last scan of a folder found for each file, so that a file unchanged since then (same size,
modification time and inode) is not hashed and decoded again: the Data page and the training worker scan
the same folder seconds apart, and re-reading 2,000 images costs a second of every Train click.

A file modified within RACY_S of the scan that looked at it is never trusted later, since it could change
again within the file system's clock tick without its stamp changing (git's "racy clean" rule).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core import paths
from core.fileio import atomic_write_json, read_json

RACY_S = 2.0


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """A file's SHA-256 when it decodes (and its shorter side), else why it is skipped."""
    digest: str = ""
    min_side: int = 0
    reason: str = ""
    detail: str = ""


class ScanMemo:
    def __init__(self, root: Path):
        key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
        self.file = paths.cache_dir() / "scans" / f"{key}.json"
        self.started_ns = time.time_ns()
        try:
            self.known = read_json(self.file)
        except (OSError, ValueError):
            self.known = {}
        self.kept: dict[str, dict] = {}

    def get(self, path: Path, relpath: str) -> Verdict | None:
        entry = self.known.get(relpath)
        if not isinstance(entry, dict) or entry.get("stamp") != _stamp(path):
            return None
        try:
            verdict = Verdict(**entry["verdict"])
        except (KeyError, TypeError):
            return None
        self.kept[relpath] = entry
        return verdict

    def put(self, path: Path, relpath: str, verdict: Verdict) -> None:
        stamp = _stamp(path)
        if stamp and self.started_ns - stamp[1] > RACY_S * 1e9:
            self.kept[relpath] = {"stamp": stamp, "verdict": asdict(verdict)}

    def save(self) -> None:
        """Only this scan's files: a deleted file's entry goes with it. A memo that cannot be written costs
        the next scan its speed, nothing else."""
        if self.kept == self.known:
            return
        with contextlib.suppress(OSError):
            atomic_write_json(self.file, self.kept)


def _stamp(path: Path) -> list[int]:
    try:
        st = path.stat()
    except OSError:
        return []
    return [st.st_size, st.st_mtime_ns, st.st_ino]
