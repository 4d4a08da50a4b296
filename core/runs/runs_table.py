"""Comparison tables in the seeds' form: size (count and %), frozen depth and trainable share,
augmentation, head, train / validation / test accuracy (with 95% Wilson intervals), training time."""

from __future__ import annotations

from core.fileio import csv_text
from core.runs.store import Run, RunState
from core.runs.summary import RunSummary, interval_text

COLUMNS = ["run", "dataset", "images", "share", "per class", "backbone", "frozen", "trainable %", "augmentation",
           "head", "train acc", "val acc", "val 95% CI", "test acc", "test 95% CI", "seconds"]
ACCURACY_COLUMNS = ("train acc", "val acc", "test acc")


def comparison_row(run: Run) -> dict:
    r = RunSummary.of(run)
    return {"run": r.id, "dataset": r.dataset, "images": r.images, "share": _round(r.share, 3),
            "per class": r.per_class, "backbone": r.backbone, "frozen": r.frozen,
            "trainable %": _round(100 * r.trainable_share if r.trainable_share is not None else None, 2),
            "augmentation": "yes" if r.augmented else "no", "head": r.head, "train acc": _round(r.train_accuracy),
            "val acc": _round(r.val_accuracy), "val 95% CI": interval_text(r.val_interval),
            "test acc": _round(r.test_accuracy), "test 95% CI": interval_text(r.test_interval),
            "seconds": _round(r.seconds, 1), "seed": run.config.seed}


def _round(value, digits: int = 4):
    return round(value, digits) if value is not None else None


def comparison_rows(runs: list[Run]) -> list[dict]:
    """Completed runs as table rows, ordered like the seeds' tables: by size, then depth, then augmentation."""
    rows = [comparison_row(r) for r in runs if r is not None and r.state == RunState.COMPLETED]
    return sorted(rows, key=lambda r: (r["backbone"], r["images"] or 0, str(r["frozen"]), r["augmentation"],
                                       r["head"], r["seed"]))


def best(rows: list[dict], column: str = "val acc") -> int | None:
    """Index of the row with the highest value in `column`."""
    values = [(r[column], i) for i, r in enumerate(rows) if r.get(column) is not None]
    return max(values)[1] if values else None


def rows_csv(rows: list[dict]) -> str:
    return csv_text(COLUMNS, ([r.get(c) for c in COLUMNS] for r in rows))
