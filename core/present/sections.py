"""What a run's or a sweep's report says, computed once and rendered twice: as the HTML report
(core.present.report) and as the slide deck (core.present.slides). A section is data (text, bullet
lines, a table, figures, a gallery); each renderer decides how it looks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.analysis import Analysis

import time
from dataclasses import dataclass

from core.backbones.depth import ALL
from core.backbones.registry import backbone_title
from core.data.sampling import sample_text
from core.model.metrics import accuracy_text
from core.present import figures
from core.present.views import RunViews, learning_curve_points
from core.runs.runs_table import COLUMNS, best, comparison_rows
from core.runs.store import Run, RunStore
from core.runs.summary import RunSummary
from core.runs.sweeps import Sweep, load_sweep

GALLERY = 12  # misclassified images with Grad-CAM (the slides show the first SLIDE_GALLERY)


@dataclass(frozen=True, kw_only=True)
class Table:
    rows: list[dict]
    columns: list[str]
    highlight: dict[str, int | None] | None = None  # column -> the row to mark best


@dataclass(frozen=True, kw_only=True)
class Section:
    anchor: str
    title: str
    text: str = ""  # a paragraph
    lines: tuple[str, ...] = ()  # bullet points
    table: Table | None = None
    figures: tuple = ()  # plotly figures
    gallery: tuple[dict, ...] = ()  # misclassified images: saliency, name, true, predicted, probability
    empty: str = ""  # said when the gallery is empty
    note: str = ""  # small print
    report_only: bool = False  # settings and long tables: the report keeps them, the slides leave them out


@dataclass(frozen=True, kw_only=True)
class Story:
    """The cover (a title, a lead sentence, key numbers, small print) and the sections, in order."""
    title: str
    heading: str
    lead: str
    cards: tuple[tuple[str, str], ...]
    note: str
    sections: tuple[Section, ...]


def _made() -> str:
    return f"Made by Transfer Learning Studio on {time.strftime('%Y-%m-%d %H:%M')}."


def run_story(run: Run) -> Story:
    """A run's story: computed once (Grad-CAM included) for the report and the slides alike."""
    views, m, d, summary = RunViews(run), run.metrics(), run.dataset(), RunSummary.of(run)
    cards = (("Train accuracy", f"{m['train_accuracy']:.1%}"),
             ("Validation accuracy", accuracy_text(summary.val_accuracy, summary.val_interval)),
             ("Test accuracy", accuracy_text(summary.test_accuracy, summary.test_interval)),
             ("Training time", f"{m['seconds']:.1f} s"), ("Trainable parameters", f"{m['trainable_params']:,}"),
             ("Classes", str(len(d.get("classes", [])))))
    lead = (f"{d.get('sample', '')}; {summary.frozen_phrase}{', augmented' if summary.augmented else ''}; "
            f"{summary.head} head.")  # the heading above names the backbone and the data
    note = f"Run {run.id}; intervals are 95% Wilson intervals for the size of each split. {_made()}"
    sections = (*_run_sections(run, views, summary), _trust_section(run),
                *analysis_sections(run.config.dataset, run.config.backbone, run.config.frozen_blocks))
    return Story(
        title=f"Run {run.id}",
        heading=f"{backbone_title(summary.backbone)} on {summary.dataset}",
        lead=lead,
        cards=cards,
        note=note,
        sections=sections,
    )


def split_words(dataset: dict) -> str:
    """"139 to train, 41 to validate, 20 to test", from a run's dataset.json."""
    sizes = dataset.get("split_sizes") or {}
    return ", ".join(f"{sizes[part]:,} to {verb}" for part, verb in (("train", "train"), ("val", "validate"),
                                                                      ("test", "test")) if part in sizes)


def settings_in_words(config, summary: RunSummary, dataset: dict) -> dict[str, str]:
    """A run's settings as the Train and Data pages show them, in words; settings that did not apply (the
    fine-tuning rate of a frozen run) are said to be so."""
    frozen = config.frozen_blocks == ALL
    phases = ("one: every block is frozen, so only the head trains" if frozen else
              "two: the head alone first, then the unfrozen blocks with it" if config.two_phase else
              "one: the unfrozen blocks and the head together")
    return {"Backbone": backbone_title(config.backbone), "Frozen blocks": summary.frozen_phrase,
            "Sample": sample_text(config.per_class, config.fraction), "Split": split_words(dataset)
            or f"{config.val_fraction:.0%} to validate, {config.test_fraction:.0%} to test",
            "Augmentation": config.augment.words(),
            "Head": f"{config.head}" + (f", dropout {config.dropout:.0%}" if config.head == "dense" else ""),
            "Epochs": str(config.epochs), "Training phases": phases, "Batch size": str(config.batch_size),
            "Learning rate (head)": f"{config.learning_rate:g}",
            "Fine-tune rate factor": "does not apply: nothing is fine-tuned" if frozen
            else f"{config.fine_tune_lr_factor:g} (the unfrozen blocks at "
                 f"{config.learning_rate * config.fine_tune_lr_factor:g})",
            "Early stopping": "off" if not config.early_stopping
            else f"after {config.early_stopping} epochs without a lower validation loss",
            "Class weighting": "on: every class counts the same" if config.class_weight else "off",
            "Image size": f"{config.image_size} px" if config.image_size else "the backbone's own",
            "Seed": str(config.seed)}


def _run_sections(run, views: RunViews, summary: RunSummary) -> tuple[Section, ...]:
    d = run.dataset()
    config_rows = [{"setting": k, "value": v} for k, v in settings_in_words(run.config, summary, d).items()]
    dataset_rows = [{"class": k, "images": v, "sampled": (d.get("sample_per_class") or {}).get(k)}
                    for k, v in (d.get("counts") or {}).items()]
    per_class = [{k: (f"{v:.1%}" if k in ("precision", "recall", "f1") else v) for k, v in r.items()}
                 for r in views.predictions["val"].per_class()]
    return (
        Section(
            anchor="configuration",
            title="Configuration",
            table=Table(rows=config_rows, columns=["setting", "value"]),
            report_only=True,
        ),
        Section(
            anchor="dataset",
            title="Dataset",
            report_only=True,
            table=Table(rows=dataset_rows, columns=["class", "images", "sampled"]),
            text=f"{len(d.get('classes', []))} classes, {d.get('images', 0):,} usable images, "
            f"{sum((d.get('skipped') or {}).values())} skipped; {split_words(d)}.",
        ),
        Section(anchor="curves", title="Training curves", figures=(views.curves(),)),
        Section(
            anchor="metrics",
            title="Per-class metrics (validation)",
            report_only=True,
            table=Table(rows=per_class, columns=["class", "precision", "recall", "f1", "support"]),
        ),
        Section(anchor="confusion", title="Confusion matrix (validation)", figures=(views.confusion(),)),
        Section(
            anchor="misclassified",
            title="Misclassified examples, with Grad-CAM (where the model looked)",
            gallery=tuple(views.misclassified(k=GALLERY, saliency=True)),
            empty="Every validation image was classified correctly.",
        ),
    )


def _trust_section(run) -> Section:
    """What the run's numbers rest on: intervals, calibration, the leak check, corrections, the k-fold
    estimate, and the latest health check of its dataset."""
    from core.health import latest
    from core.runs import trust

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
    reliability = (figures.reliability_diagram(*trust.reliability_rows(run)),) if m.get("ece") is not None else ()
    return Section(
        anchor="trust",
        title="How far these numbers can be trusted",
        lines=tuple(lines),
        figures=reliability,
        note="Accuracies carry 95% Wilson intervals for the size of their split.",
    )


@dataclass(frozen=True, kw_only=True)
class LatestAnalysis:
    analysis: Analysis
    cut: int | None  # the index of the run's last frozen block
    forecast: str  # as a sentence


def _latest_analysis(dataset: str, backbone: str, frozen_blocks: int) -> LatestAnalysis | None:
    """The latest transfer analysis of this dataset and backbone, or None where no analysis was made."""
    from core.analysis import latest
    from core.backbones.depth import ALL

    analysis = latest(dataset, backbone)
    if analysis is None:
        return None
    cut = len(analysis.depth) - 1 if frozen_blocks == ALL else frozen_blocks - 1
    forecast = "; ".join(f"{f.per_class} training images per class: about {f.accuracy:.1%} ({f.low:.1%} to "
                         f"{f.high:.1%})" for f in analysis.forecast) or "too few sizes to fit a curve"
    return LatestAnalysis(analysis=analysis, cut=cut if cut >= 0 else None, forecast=forecast)


def analysis_sections(dataset: str, backbone: str, frozen_blocks: int) -> tuple[Section, ...]:
    """The latest transfer analysis of this dataset and backbone (core.analysis) and the latest backbone
    comparison on the dataset, those that were made."""
    from core.present.analysis_figures import depth_figure, size_figure

    found = _latest_analysis(dataset, backbone, frozen_blocks)
    if found is None:
        return _backbones_section(dataset)
    analysis, cut, forecast = found.analysis, found.cut, found.forecast
    return (*_backbones_section(dataset),
            Section(anchor="analysis", title="Transfer analysis: which block's features carry the classes",
                    text=f"Linear probes on every block's pooled output ({analysis.images} images, "
                         f"{analysis.per_class} in the smallest class; k-fold accuracy). Best block: "
                         f"{analysis.depth[analysis.best_block].block}.", figures=(depth_figure(analysis, cut),)),
            Section(anchor="analysis-size", title="How much data: accuracy by training-set size, and the forecast",
                    figures=(size_figure(analysis),),
                    note=f"Forecast (an estimate from the fitted curve, 95% bootstrap interval): {forecast}."))


def _backbones_section(dataset: str) -> tuple[Section, ...]:
    """Which backbone (core.analysis.compare), if the dataset's backbones were compared."""
    from core.analysis.compare import latest
    from core.present.analysis_figures import backbones_figure
    from core.present.tables import backbone_rows

    comparison = latest(dataset)
    if comparison is None:
        return ()
    rows = backbone_rows(comparison)
    return (Section(anchor="backbones", title="Which backbone: every backbone probed on the same sample and folds",
                    text=f"Suggested: {comparison.reason}", table=Table(rows=rows, columns=list(rows[0])),
                    figures=(backbones_figure(comparison),),
                    note=f"{comparison.images} images, {comparison.per_class} in the smallest class; linear probes "
                         "(k-fold mean ± std) and the k-NN head on the same folds; speed measured on the machine "
                         "that made the comparison."),)


def sweep_story(sweep: Sweep) -> Story:
    """A sweep's story: the comparison, the learning curve, the analysis and each run's curves."""
    runs = [r for r in sweep.runs() if r is not None]
    rows = comparison_rows(runs)
    top = best(rows, "val acc")
    lead = (f"{len(rows)} of {len(sweep.run_ids)} runs completed. " + (
        f"Best validation accuracy: {rows[top]['val acc']:.1%} ({rows[top]['val 95% CI']}), run {rows[top]['run']}."
        if top is not None else "No run has finished yet."))
    highlight = {c: best(rows, c) for c in ("train acc", "val acc", "test acc")}
    sections = [
        Section(anchor="comparison", title="Comparison", table=Table(rows=rows, columns=COLUMNS, highlight=highlight))
    ]
    points = learning_curve_points(runs)
    if points:
        sections.append(
            Section(anchor="learning-curve", title="Learning curve", figures=(figures.learning_curve(points),))
        )
    if runs:
        config = runs[0].config
        sections += analysis_sections(config.dataset, config.backbone, config.frozen_blocks)
    sections += [Section(anchor=f"run-{row['run']}", title=f"Run {row['run']}", report_only=True, figures=(
        figures.training_curves(sweep.store.load(row["run"]).history(), f"Training curves: {row['run']}"),))
                 for row in rows]
    return Story(
        title=f"Sweep {sweep.name}",
        heading=f"Sweep {sweep.name}",
        lead=lead,
        cards=(),
        note=_made(),
        sections=tuple(sections),
    )


def story(store: RunStore, target: str) -> Story:
    """The story of a run or a sweep id of this store."""
    return sweep_story(load_sweep(store, target)) if target.startswith("sweep-") else run_story(store.load(target))
