"""How far one run's numbers can be trusted: intervals, calibration, the leak check, the corrections it
trained with (and the runs that differ from it only by them), and a k-fold estimate of its head that
does not depend on the one split."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from core.backbones.depth import ALL
from core.fileio import atomic_write_json, read_json
from core.model.calibration import reliability, scale
from core.model.metrics import accuracy_text
from core.runs.store import Run, RunState, RunStore

KFOLD_FILE = "kfold.json"


def accuracy_lines(run: Run) -> list[tuple[str, str]]:
    """(label, value) of every accuracy-like figure of a completed run, each accuracy with its interval."""
    from core.runs.summary import RunSummary

    m, r = run.metrics(), RunSummary.of(run)
    lines = [("Validation accuracy", accuracy_text(r.val_accuracy, r.val_interval)),
             ("Test accuracy", accuracy_text(r.test_accuracy, r.test_interval))]
    for key, label in (("val_balanced_accuracy", "Balanced accuracy (validation)"),
                       ("val_macro_f1", "Macro-F1 (validation)")):
        if m.get(key) is not None:
            lines.append((label, f"{m[key]:.1%}"))
    if m.get("ece") is not None:
        lines.append(("Calibration error (ECE, validation)", f"{m['ece']:.3f} after temperature scaling "
                                                               f"(T = {m['temperature']:.2f}); {m['ece_before']:.3f} "
                                                               f"before"))
    return lines


def reliability_rows(run: Run) -> tuple[list[dict], list[dict]]:
    """Validation reliability bins before and after the run's temperature (the stored probabilities are
    the scaled ones; scaling them by 1/T gives back the raw ones exactly)."""
    val = run.predictions()["val"]
    temperature = run.metrics().get("temperature") or 1.0
    return reliability(scale(val.probs, 1.0 / temperature), val.labels), reliability(val.probs, val.labels)


def corrections(run: Run) -> dict:
    """The overrides this run trained with: {"file", "applied": [...], "stale": [...]} or {}."""
    return run.dataset().get("overrides") or {}


def additions(run: Run) -> dict:
    """The pool images this run trained with, labelled on the Data page or by `core label`: {"file", "applied":
    [...], "stale": [...]} or {}."""
    return run.dataset().get("additions") or {}


def _corrections_key(run: Run) -> tuple:
    fixed = sorted((a["file"], a["action"], a.get("label") or "") for a in corrections(run).get("applied", []))
    added = sorted((a["file"], "added", a["label"]) for a in additions(run).get("applied", []))
    return tuple(fixed + added)


def _settings(run: Run):
    """The run's config, with a sample that took every image named so whatever its images per class: after a
    labelling round the same "every image" is a larger number."""
    if run.dataset().get("sample_share") == 1.0:
        return run.config.with_(per_class=None, fraction=None)
    return run.config


def related_by_corrections(store: RunStore, run: Run) -> list[Run]:
    """Completed runs with this run's config whose corrections or labelled pool images differ (the runs before
    and after a fix, or a labelling round), and this run, in the order they finished."""
    mine, settings = _corrections_key(run), _settings(run)
    found = [r for r in store.runs() if r.state == RunState.COMPLETED and _settings(r) == settings
             and (r.id == run.id or _corrections_key(r) != mine)]
    return sorted(found, key=lambda r: (r.status.get("finished") or 0, r.id))  # ids of one second sort at random


def kfold_possible(run: Run) -> str | None:
    """None if a k-fold estimate of this run's head can be made, else why not."""
    if run.config.frozen_blocks != ALL or run.config.augment.enabled:
        return ("A k-fold estimate refits the head on fixed feature vectors: it needs every block frozen and no "
                "augmentation, and this run fine-tunes or augments.")
    return None


def kfold_estimate(run: Run, folds: int = 5, progress: Callable[[int, int], None] | None = None) -> dict:
    """The run's head refitted on k stratified folds of its whole sample (train, validation and test) from the
    feature store's vectors; mean and std of the held-out accuracy. Kept in the run folder."""
    from sklearn.model_selection import StratifiedKFold

    from core.features.blocks import block_vectors
    from core.model.probe import folds_for

    start, config, split = time.monotonic(), run.config, run.split()
    items = [*split.train, *split.val, *split.test]
    found = block_vectors(items, config.backbone, config.image_size)
    vectors = found.final
    index = {c: i for i, c in enumerate(split.classes)}
    labels = np.array([index[i.label] for i in items])
    k = min(folds, folds_for(labels, split.classes))
    scores = []
    for n, (train, held) in enumerate(StratifiedKFold(k, shuffle=True, random_state=config.seed).split(vectors,
                                                                                                          labels)):
        head = config.new_head(len(split.classes)).fit(vectors[train], labels[train], len(split.classes),
                                                       config.seed)
        probs = head.probs(vectors[held])
        scores.append(float((probs.argmax(1) == labels[held]).mean()))
        if progress:
            progress(n + 1, k)
    result = {"folds": k, "mean": float(np.mean(scores)), "std": float(np.std(scores)), "scores": scores,
              "images": len(items), "seconds": round(time.monotonic() - start, 2)}
    atomic_write_json(run.dir / KFOLD_FILE, result)
    return result


def stored_kfold(run: Run) -> dict | None:
    try:
        return read_json(run.dir / KFOLD_FILE)
    except (OSError, ValueError):
        return None
