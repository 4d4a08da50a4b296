"""Comparison tables in the seeds' form: size (count and %), frozen depth and trainable share,
augmentation, head, train / validation / test accuracy, training time."""

from __future__ import annotations

import csv
import io

from core.runs import Run

COLUMNS = ["run", "dataset", "images", "share", "per class", "backbone", "frozen", "trainable %", "augmentation",
           "head", "train acc", "val acc", "test acc", "seconds"]
ACCURACY_COLUMNS = ("train acc", "val acc", "test acc")


def comparison_row(run: Run) -> dict:
    c, m, d = run.config, run.metrics(), run.dataset()
    trainable, frozen = m.get("trainable_params", 0), m.get("frozen_params", 0)
    return {
        "run": run.id,
        "dataset": d.get("name", c.dataset.rsplit("/", 1)[-1]),
        "images": d.get("sample_size"),
        "share": round(d.get("sample_share", 0.0), 3),
        "per class": c.per_class if c.per_class else max((d.get("sample_per_class") or {"": 0}).values()),
        "backbone": c.backbone,
        "frozen": "all" if c.frozen_blocks < 0 else c.frozen_blocks,
        "trainable %": round(100 * trainable / (trainable + frozen), 2) if trainable + frozen else None,
        "augmentation": "yes" if c.augment.enabled else "no",
        "head": c.head,
        "train acc": _round(m.get("train_accuracy")),
        "val acc": _round(m.get("val_accuracy")),
        "test acc": _round(m.get("test_accuracy")),
        "seconds": round(m["seconds"], 1) if m.get("seconds") is not None else None,
    }


def _round(value):
    return round(value, 4) if value is not None else None


def comparison_rows(runs: list[Run]) -> list[dict]:
    """Completed runs as table rows, ordered like the seeds' tables: by size, then depth, then augmentation."""
    rows = [comparison_row(r) for r in runs if r is not None and r.state == "completed"]
    return sorted(rows, key=lambda r: (r["backbone"], r["images"] or 0, str(r["frozen"]), r["augmentation"],
                                       r["head"]))


def best(rows: list[dict], column: str = "val acc") -> int | None:
    """Index of the row with the highest value in `column`."""
    values = [(r[column], i) for i, r in enumerate(rows) if r.get(column) is not None]
    return max(values)[1] if values else None


def rows_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
