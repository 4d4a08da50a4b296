"""Tables of runs for people: fractions as percentages with one decimal, seconds with one, other numbers with
three significant figures, and the best accuracy of a column marked only where the runs differ. The rows keep
their raw numbers (the CSV download and the CLI's JSON use them)."""

from __future__ import annotations

import numbers

import pandas as pd

from core.runs.runs_table import ACCURACY_COLUMNS

PERCENT_COLUMNS = ("share", *ACCURACY_COLUMNS)  # fractions of 1
BEST_COLOR = "#bbf7d0"


def score_text(score: float) -> str:
    """A score between 0 and 1 (a label's quality) with two significant figures; the tiny ones as a bound."""
    return "< 0.001" if score < 0.001 else f"{score:.2g}"


def _number(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    return f"{value:.3g}"


def cell_text(column: str, value) -> str:
    """One cell as runs_table shows it (the HTML report's tables use this too)."""
    return _formatter(column)(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (
        "-" if value is None else str(value))


def _formatter(column: str):
    if column in PERCENT_COLUMNS:
        return lambda v: "-" if v is None or pd.isna(v) else f"{v:.1%}"
    if column in ("seconds", "trainable %"):
        return lambda v: "-" if v is None or pd.isna(v) else f"{v:.1f}"
    return _number


def _best(column: pd.Series) -> list[str]:
    """The highest value's cells, unless every run has the same (then no cell stands out)."""
    values = pd.to_numeric(column, errors="coerce")
    if values.nunique(dropna=True) < 2:
        return [""] * len(column)
    return [f"background-color: {BEST_COLOR}" if v == values.max() else "" for v in values]


def runs_table(rows: list[dict], columns: list[str] | None = None):
    """A pandas Styler of the rows, formatted for reading and with the best accuracies marked."""
    table = pd.DataFrame(rows, columns=columns)
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c]) or c in PERCENT_COLUMNS]
    styler = table.style.format({c: _formatter(c) for c in numeric}, na_rep="-")
    best = [c for c in ACCURACY_COLUMNS if c in table.columns]
    return styler.apply(_best, subset=best) if best else styler


def backbone_rows(comparison) -> list[dict]:
    """The backbone comparison (core.analysis.compare) as table rows of text, one per backbone."""
    from core.backbones.registry import backbone_title

    return [{"backbone": backbone_title(r.model) if r.pretrained else "Lite0, random weights",
             "input": f"{r.input_size} px", "parameters": f"{r.params / 1e6:.2f} M", "MB": f"{r.mb:.1f}",
             "images/s (median, range of 3 interleaved)": f"{r.speed_text} ({r.engine})",
             "best block": r.best_block,
             "best probe": f"{r.best_accuracy:.1%} ± {r.best_std:.1%}",
             "last block": f"{r.last_accuracy:.1%} ± {r.last_std:.1%}",
             "k-NN": f"{r.knn_accuracy:.1%} ± {r.knn_std:.1%}"} for r in comparison.rows]
