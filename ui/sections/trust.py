"""The Results page's trust sections: what was checked, calibration, runs before and after corrections,
and the k-fold estimate. Rendering only; the numbers come from core.runs.trust."""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.present.figures import reliability_diagram
from core.present.tables import runs_table
from core.runs import trust
from core.runs.runs_table import comparison_rows
from core.runs.summary import where_trained
from ui import state
from ui.presenting import chart, table
from ui.progress import counted_bar
from ui.widgets import show_error


def checks(run, dataset_info: dict, metrics: dict) -> None:
    """One line each: balanced accuracy and macro-F1, the leak check, the corrections and pool labels trained
    with, and the cluster node it trained on."""
    parts = [f"{label}: {value}" for label, value in trust.accuracy_lines(run)[2:4]]
    leak = (dataset_info.get("leak_check") or {}).get("text")
    if leak:
        parts.append(f"Leak check: {leak}")
    applied = trust.corrections(run).get("applied", [])
    if applied:
        parts.append(f"Trained with {len(applied)} correction(s) from the Data page's Health section")
    added = trust.additions(run).get("applied", [])
    if added:
        parts.append(f"Trained with {len(added)} image(s) labelled from a pool")
    where = where_trained(run.status)
    if where:
        parts.append(where)
    if parts:
        st.caption(" · ".join(parts))


def calibration(run, metrics: dict) -> None:
    if metrics.get("ece") is None:
        return
    st.subheader("Calibration: can its confidence be taken at its word?")
    left, right = st.columns([3, 2])
    before, after = trust.reliability_rows(run)
    chart(reliability_diagram(before, after), left)
    right.metric("Expected calibration error", f"{metrics['ece']:.3f}", f"{metrics['ece_before']:.3f} before scaling",
                 delta_color="off", delta_arrow="off")
    right.markdown(
        f"Temperature scaling divides the scores by **T = {metrics['temperature']:.2f}**, fitted on the validation "
        f"images; predictions and exports use it. It never changes the predicted class, only how sure the model "
        f"says it is. With {len(run.split().val)} validation images each bin holds few images: read the diagram "
        f"as a trend." + (f" Test ECE after scaling: {metrics['test_ece']:.3f}." if metrics.get("test_ece") is not None
                          else ""))
    right.caption(f"'None of these': an image further from every class mean than "
                  f"{metrics.get('rejection_threshold', 0):.3f} (cosine distance; 99% of training images are closer to "
                  f"their own class) is reported as none of the classes on the Predict page"
                  + (f"; {metrics['val_unknown_share']:.1%} of this run's validation images would be."
                     if metrics.get("val_unknown_share") is not None else "."))


def corrections_compare(run) -> None:
    related = trust.related_by_corrections(state.run_store(), run)
    if len(related) < 2:
        return
    st.subheader("Before and after corrections and labelling rounds")
    rows = comparison_rows(related)
    for row in rows:
        found = next(r for r in related if r.id == row["run"])
        row["corrections"] = len(trust.corrections(found).get("applied", []))
        row["labelled from a pool"] = len(trust.additions(found).get("applied", []))
    table(runs_table([{k: row[k] for k in ("run", "corrections", "labelled from a pool", "images", "val acc",
                                           "val 95% CI", "test acc", "test 95% CI")} for row in rows]))
    st.caption("Runs with this run's settings that differ only in the corrections and the pool images they trained "
               "with, in the order they finished. Where the intervals overlap, the difference may be chance.")


def kfold(run, summary) -> None:
    why_not = trust.kfold_possible(run)
    stored = trust.stored_kfold(run)
    st.subheader("An estimate that does not depend on the split")
    if stored:
        st.metric(f"{stored['folds']}-fold accuracy of this head ({stored['images']} images)",
                  f"{stored['mean']:.1%} ± {stored['std']:.1%}", delta_color="off")
        return
    if why_not:
        st.caption(why_not)
        return
    st.caption("Refits this run's head on k folds of the whole sample (train, validation and test) from the stored "
               "feature vectors: mean ± std of the held-out accuracy, a figure that does not hang on which images "
               "landed in validation.")
    if st.button("Estimate with 5-fold cross-validation", icon=":material/calculate:"):
        bar, progress = counted_bar("Fitting the folds...", "Folds fitted")
        try:
            trust.kfold_estimate(run, progress=progress)
        except StudioError as exc:
            show_error(exc)
            return
        st.rerun()
