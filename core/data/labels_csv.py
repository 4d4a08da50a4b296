"""A CSV of labels for pool images: rows `file,class`, an optional header row, as `core label` reads it."""

from __future__ import annotations

import csv
from pathlib import Path

from core.errors import DataError
from core.fileio import csv_value

HEADER = ("file", "class")


def read_labels(path: str | Path) -> dict[str, str]:
    """file -> class; DataError naming the file and line when a row is not two cells or a file comes twice."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read it as a CSV of file,class rows ({exc}).") from exc
    labels: dict[str, str] = {}
    for line, row in enumerate(rows, 1):
        cells = [csv_value(c.strip()) for c in row]  # a cell the studio quoted reads as it was
        if not any(cells) or (line == 1 and tuple(c.lower() for c in cells) == HEADER):
            continue
        if len(cells) != 2 or not all(cells):
            raise DataError(f"{path}, line {line}: expected two cells, file,class; found {row!r}.")
        if cells[0] in labels and labels[cells[0]] != cells[1]:
            raise DataError(f"{path}, line {line}: {cells[0]} is labelled twice, as {labels[cells[0]]!r} and "
                            f"{cells[1]!r}; keep one row.")
        labels[cells[0]] = cells[1]
    if not labels:
        raise DataError(f"{path} has no rows; expected rows file,class.")
    return labels
