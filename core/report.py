"""Self-contained HTML reports: one file, figures and images inline, opens with no network.

plotly.js is embedded once (in the first figure); images are base64 PNG data URIs.
"""

from __future__ import annotations

import base64
import html
import io
import time

from PIL import Image

from core.compare import COLUMNS, best, comparison_rows
from core.evaluation import accuracy_text
from core.fileio import atomic_write_text
from core.run_summary import RunSummary
from core.runs import load_run
from core.sweeps import load_sweep
from core.views import RunViews, learning_curve_points
from core.viz import figures

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2937}
h1{font-size:1.8rem} h2{border-bottom:1px solid #e5e7eb;padding-bottom:.3rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} td,th{border:1px solid #e5e7eb;padding:.25rem .6rem}
th{background:#f3f4f6;text-align:left} td.num{text-align:right} td.best{background:#dcfce7;font-weight:600}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #e5e7eb;border-radius:8px;padding:.6rem 1rem}
.card b{display:block;font-size:1.5rem} .muted{color:#6b7280;font-size:.85rem}
"""


class FigureHtml:
    """Turns plotly figures into HTML, embedding plotly.js only in the first one. With `height` (a CSS
    length), every figure drops its own height and fills that much of its container, resizing with it;
    `font_size` sets every figure's base font."""

    def __init__(self, height: str | None = None, font_size: int | None = None):
        self.first, self.height, self.font_size = True, height, font_size

    def __call__(self, fig) -> str:
        options = {}
        if self.font_size:
            fig.update_layout(font_size=self.font_size)
        if self.height:
            fig.update_layout(height=None, width=None, autosize=True)
            options = {"default_height": self.height, "default_width": "100%"}
        out = fig.to_html(full_html=False, include_plotlyjs=self.first,
                          config={"displaylogo": False, "responsive": True}, **options)
        self.first = False
        return out


def image_html(image: Image.Image, alt: str) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(rows: list[dict], columns: list[str], highlight: dict[str, int | None] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for c in columns:
            value = row.get(c)
            cls = "num" if isinstance(value, (int, float)) else ""
            if highlight and highlight.get(c) == i:
                cls += " best"
            text = "" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
            cells.append(f'<td class="{cls.strip()}">{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _page(title: str, sections: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}"
            f"<p class='muted'>Made by Transfer Learning Studio on {time.strftime('%Y-%m-%d %H:%M')}.</p>"
            f"</body></html>")


def run_sections(run_id: str, fig) -> list[str]:
    run = load_run(run_id)
    views = RunViews(run)
    m, d, c, summary = run.metrics(), run.dataset(), run.config, RunSummary.of(run)
    val = views.predictions["val"]
    cards = "".join(f"<div class='card'>{label}<b>{value}</b></div>" for label, value in (
        ("Train accuracy", f"{m['train_accuracy']:.1%}"),
        ("Validation accuracy", accuracy_text(summary.val_accuracy, summary.val_interval)),
        ("Test accuracy", accuracy_text(summary.test_accuracy, summary.test_interval)),
        ("Training time", f"{m['seconds']:.0f} s"), ("Trainable parameters", f"{m['trainable_params']:,}")))
    config_rows = [{"setting": k, "value": str(v)} for k, v in c.to_json().items()]
    for row in config_rows:
        if row["setting"] == "frozen_blocks" and summary.frozen == "all":
            row["value"] = "all (feature extraction)"
    dataset_rows = [{"class": k, "images": v, "sampled": (d.get("sample_per_class") or {}).get(k)}
                    for k, v in (d.get("counts") or {}).items()]
    per_class = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in val.per_class()]
    wrong = views.misclassified(k=12, saliency=True)
    gallery = "".join(f"<figure style='display:inline-block;margin:4px'>{image_html(r['saliency'], r['name'])}"
                      f"<figcaption class='muted'>{html.escape(r['true'])} &rarr; {html.escape(r['predicted'])} "
                      f"({r['probability']:.0%})</figcaption></figure>" for r in wrong)
    return [
        f"<h1>Run {html.escape(run.id)}</h1><p>{html.escape(summary.backbone)} on {html.escape(summary.dataset)}: "
        f"{html.escape(d.get('sample', ''))}; {summary.frozen_phrase}{', augmented' if summary.augmented else ''}; "
        f"{html.escape(summary.head)} head.</p><div class='cards'>{cards}</div>",
        "<h2 id='configuration'>Configuration</h2>" + table_html(config_rows, ["setting", "value"]),
        f"<h2 id='dataset'>Dataset</h2><p>{len(d.get('classes', []))} classes, {d.get('images', 0):,} usable images, "
        f"{sum((d.get('skipped') or {}).values())} skipped; split {d.get('split_sizes')}.</p>"
        + table_html(dataset_rows, ["class", "images", "sampled"]),
        "<h2 id='curves'>Training curves</h2>" + fig(views.curves()),
        "<h2 id='metrics'>Per-class metrics (validation)</h2>"
        + table_html(per_class, ["class", "precision", "recall", "f1", "support"]),
        "<h2 id='confusion'>Confusion matrix (validation)</h2>" + fig(views.confusion()),
        "<h2 id='misclassified'>Misclassified examples, with Grad-CAM</h2>"
        + (gallery or "<p>Every validation image was classified correctly.</p>"),
    ]


def trust_sections(run_id: str, fig) -> list[str]:
    """What the run's numbers rest on: intervals, calibration, the leak check, corrections, the k-fold
    estimate, and the latest health check of its dataset."""
    from core import trust
    from core.health import latest

    run = load_run(run_id)
    m, d = run.metrics(), run.dataset()
    lines = [f"{label}: {value}" for label, value in trust.accuracy_lines(run)]
    leak = (d.get("leak_check") or {}).get("text")
    lines += [f"Leak check: {leak}"] if leak else []
    applied = trust.corrections(run).get("applied", [])
    lines += [f"Trained with {len(applied)} correction(s): " + ", ".join(
        f"{a['file']} {'excluded' if a['action'] == 'exclude' else 'relabelled ' + str(a['label'])}"
        for a in applied[:10])] if applied else []
    kfold = trust.stored_kfold(run)
    lines += [f"{kfold['folds']}-fold estimate of this head on {kfold['images']} images: {kfold['mean']:.1%} ± "
              f"{kfold['std']:.1%}"] if kfold else []
    health = latest(d.get("root", ""), run.config.backbone)
    if health is not None:
        lines.append(f"Dataset health ({health.images:,} images): {len(health.label_issues)} likely label errors, "
                     f"{len(health.near_duplicates)} near-duplicate groups, {len(health.odd_images)} odd images; "
                     f"{health.imbalance['text']}")
    section = ("<h2 id='trust'>How far these numbers can be trusted</h2><p class='muted'>Accuracies carry 95% Wilson "
               "intervals for the size of their split.</p><ul>"
               + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>")
    if m.get("ece") is not None:
        before, after = trust.reliability_rows(run)
        section += fig(figures.reliability_diagram(before, after))
    return [section]


def latest_analysis(dataset: str, backbone: str, frozen_blocks: int):
    """(the latest transfer analysis of this dataset and backbone, the index of the run's last frozen block or
    None, the forecast as a sentence), or None where no analysis was made."""
    from core.analysis import latest
    from core.config import ALL

    analysis = latest(dataset, backbone)
    if analysis is None:
        return None
    cut = len(analysis.depth) - 1 if frozen_blocks == ALL else frozen_blocks - 1
    forecast = "; ".join(f"{f.per_class} training images per class: about {f.accuracy:.1%} ({f.low:.1%} to "
                         f"{f.high:.1%})" for f in analysis.forecast) or "too few sizes to fit a curve"
    return analysis, (cut if cut >= 0 else None), forecast


def analysis_sections(dataset: str, backbone: str, frozen_blocks: int, fig) -> list[str]:
    """The latest transfer analysis of this dataset and backbone (core.analysis), if one was made."""
    from core.viz.analysis import depth_figure, size_figure

    found = latest_analysis(dataset, backbone, frozen_blocks)
    if found is None:
        return []
    analysis, cut, forecast = found
    return [f"<h2 id='analysis'>Transfer analysis</h2><p>Linear probes on every block's pooled output "
            f"({analysis.images} images, {analysis.per_class} in the smallest class; k-fold accuracy). Best block: "
            f"{html.escape(analysis.depth[analysis.best_block].block)}.</p>"
            + fig(depth_figure(analysis, cut)) + fig(size_figure(analysis)) + f"<p>Forecast (an estimate from the "
            f"fitted curve, 95% bootstrap interval): {html.escape(forecast)}.</p>"]


def run_report(run_id: str) -> str:
    fig, config = FigureHtml(), load_run(run_id).config
    sections = (run_sections(run_id, fig) + trust_sections(run_id, fig)
                + analysis_sections(config.dataset, config.backbone, config.frozen_blocks, fig))
    return _page(f"Run {run_id}", sections)


def sweep_report(sweep_id: str) -> str:
    sweep = load_sweep(sweep_id)
    runs = [r for r in sweep.runs() if r is not None]
    rows = comparison_rows(runs)
    highlight = {c: best(rows, c) for c in ("train acc", "val acc", "test acc")}
    fig = FigureHtml()
    sections = [f"<h1>Sweep {html.escape(sweep.name)}</h1><p>{len(rows)} of {len(sweep.run_ids)} runs completed; "
                f"progress {html.escape(str(sweep.progress()))}.</p>",
                "<h2 id='comparison'>Comparison</h2>" + table_html(rows, COLUMNS, highlight)]
    points = learning_curve_points(runs)
    if points:
        sections.append("<h2 id='learning-curve'>Learning curve</h2>" + fig(figures.learning_curve(points)))
    if runs:
        sections += analysis_sections(runs[0].config.dataset, runs[0].config.backbone, runs[0].config.frozen_blocks,
                                      fig)
    for row in rows:
        sections.append(f"<h2>Run {html.escape(row['run'])}</h2>" + fig(
            figures.training_curves(load_run(row["run"]).history(), f"Training curves: {row['run']}")))
    return _page(f"Sweep {sweep.name}", sections)


def report(target: str) -> str:
    """The report of a run or a sweep id."""
    return sweep_report(target) if target.startswith("sweep-") else run_report(target)


def write_report(target: str, out: str) -> str:
    """Write the report of a run or a sweep id to `out`; return the path."""
    atomic_write_text(out, report(target))
    return str(out)
