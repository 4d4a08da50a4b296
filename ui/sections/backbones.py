"""The Analyze page's "Which backbone" section: every chosen backbone probed on the same sample and folds
(core.analysis.compare), a table, accuracy against cost with the Pareto front, and the suggestion, which
"Train with this" carries to the Train page."""

from __future__ import annotations

import streamlit as st

from core.analysis import compare as comparing
from core.backbones import bundled, get_spec, list_specs, model_store
from core.backbones.registry import Source, backbone_title
from core.errors import StudioError
from core.present.analysis_figures import backbones_figure
from core.present.tables import backbone_rows
from ui.presenting import chart, editing, table
from ui.progress import stage_text
from ui.widgets import show_error

CHOICES = [spec.name for spec in list_specs() if spec.arch and spec.source in (Source.BUNDLED, Source.RANDOM)]


def _label(name: str) -> str:
    return get_spec(name).title


def _run(models: list[str]):
    s = st.session_state
    bar = st.progress(0.0, text="Checking the files...")
    steps = {"scan": "Checking the files", "features": "one forward pass, every block kept",
             "depth": "a linear probe on every block", "k-NN": "the k-NN head, each image left out in turn"}

    def report(stage: str, done: int, total: int) -> None:
        name, sep, step = stage.partition(": ")  # "scan", "NAME: depth" or "convert NAME: reading ..."
        if not sep:
            name, step = "", stage
        if name.startswith("convert "):
            name, step = name.removeprefix("convert "), f"converting for this machine, {step}"
        index = models.index(name) if name in models else 0
        frac = done / total if total else 0.0
        within = {"features": 0.5 * frac, "depth": 0.5 + 0.4 * frac, "k-NN": 0.9}.get(step, 0.0)
        share = 0.9 * (index + within) / len(models) if name else 0.9 + 0.1 * frac  # the timing comes last
        where = f"{backbone_title(name)} ({index + 1} of {len(models)}): " if name else ""
        bar.progress(min(share, 1.0), text=where + stage_text(steps.get(step, step), done, total))

    try:
        return comparing.compare(s.dataset, models, per_class=s.per_class, fraction=s.fraction, progress=report)
    except StudioError as exc:
        show_error(exc)
        return None
    finally:
        bar.empty()


def _show(comparison) -> None:
    s = st.session_state
    st.caption(f"{comparison.images} images, {comparison.per_class} in the smallest class, the same folds for "
               f"every backbone; {comparison.seconds:.1f} s.")
    table(backbone_rows(comparison))
    chart(backbones_figure(comparison))
    st.caption("Each point: the best block's linear probe (stratified k-fold, mean ± std). Cost: one image through "
               "the whole backbone on this machine, through the engine a frozen run uses (TFLite for the bundled "
               "backbones, TensorFlow for random weights). Random weights keep Lite0's architecture: the gap to them "
               "is what ImageNet pretraining brings to your images.")
    st.success(f"**Suggested:** {comparison.reason}")
    if editing() and st.button("Train with this", icon=":material/model_training:", key="train_with_backbone"):
        s.backbone, s.frozen_blocks = comparison.suggested, comparison.suggested_frozen
        for key in ("w_backbone", "w_frozen"):  # the Train page's widgets re-seed from the values above
            s.pop(key, None)
        st.switch_page("app_pages/train.py")


def section() -> None:
    s = st.session_state
    st.subheader("Which backbone")
    st.markdown("The same sample through each backbone once, every block probed: which pretrained network's "
                "features separate **your** classes best, and what each costs to run here.")
    comparison = comparing.latest(s.dataset)
    if editing():
        models = st.multiselect("Backbones to compare", CHOICES, default=CHOICES, format_func=_label,
                                key="compare_models")
        missing = [m for m in models if get_spec(m).converted and not model_store.ready(m)]
        converting = (f"{', '.join(_label(m) for m in missing)} will be converted for this machine first: "
                      f"{bundled.conversion_estimate(missing).text()}. " if missing else "")
        st.caption(f"{converting}What a backbone computed once is kept, so comparing again computes nothing.")
        if st.button("Compare backbones", icon=":material/compare:", disabled=len(models) < 2):
            comparison = _run(models) or comparison
    if comparison is None:
        st.info("Press **Compare backbones**." if editing() else "No backbone comparison for this dataset yet.")
        return
    _show(comparison)

