"""Records the studio keeps beside a dataset folder (corrections, labelled pool images), never inside it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from core.errors import DataError


def beside(root: str | Path, suffix: str) -> Path:
    """`<dataset folder><suffix>`, next to the folder."""
    root = Path(root)
    return root.parent / f"{root.name}{suffix}"


def read_entries(path: Path, kind: type, malformed: Callable[[Path, str], DataError]):
    """The record's "entries" (a `kind`: dict or list), or None when there is no file; malformed(path, why) is
    raised when the file is not JSON or has no such entries."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise malformed(path, f"not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("entries"), kind):
        raise malformed(path, f'expected an object with an "entries" {"object" if kind is dict else "list"}')
    return data["entries"]
