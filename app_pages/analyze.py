"""Analyze: where to cut and how much data, from one forward pass over the sample, in seconds."""

import streamlit as st

from core.analysis import analyze, latest
from core.backbones.depth import ALL, frozen_text
from core.backbones.registry import backbone_title
from core.data.sampling import sample, sample_text
from core.errors import StudioError
from core.present.analysis_figures import depth_figure, size_figure
from ui import resources
from ui.presenting import chart, editing
from ui.progress import staged_bar
from ui.sections import backbones
from ui.widgets import show_error

STAGES = {"scan": (0.0, 0.15, "Checking the files"), "features": (0.15, 0.6, "One forward pass, every block kept"),
          "depth": (0.6, 0.9, "A linear probe on every block"), "sizes": (0.9, 1.0, "Probes on growing samples")}

s = st.session_state
st.title("Analyze")
st.markdown("Before training: run the sample through the frozen backbone once, keep **every block's** pooled "
            "output, and fit a linear probe on each. It shows which depth's features separate your classes "
            "(Yosinski et al., 2014) and how accuracy grows with more images per class, in seconds rather "
            "than a sweep of training runs. Confirm with real runs on the Train and Experiments pages.")
st.markdown(f"**Data:** {s.dataset_label}, {sample_text(s.per_class, s.fraction)} (change on the Data page) · "
            f"**Backbone:** {backbone_title(s.backbone)} (change on the Train page)")


analysis = latest(s.dataset, s.backbone)
label = "Analyze" if analysis is None else "Analyze again"
stale = editing() and analysis is not None and analysis.images != len(
    sample(resources.dataset(s.dataset, s.get("dataset_stamp", 0.0)), s.per_class, s.fraction, seed=0).items)
if stale:  # images were labelled or corrected since: the curve and forecast are redrawn with the new count
    st.info(f"The sample has changed since the last analysis ({analysis.images} images then): analysing again.",
            icon=":material/update:")
if editing() and (st.button(label, type="primary", icon=":material/query_stats:") or stale):
    bar, progress = staged_bar(STAGES, "Starting")
    try:
        analysis = analyze(s.dataset, s.backbone, per_class=s.per_class, fraction=s.fraction, progress=progress)
    except StudioError as exc:
        show_error(exc)
        st.stop()
    finally:
        bar.empty()
if analysis is None:
    st.info("Press **Analyze**: on the bundled model a few hundred images take well under a minute." if editing()
            else "This dataset has not been analysed yet.")
    backbones.section()
    st.stop()

where = {"tflite": "TensorFlow Lite", "tensorflow": "TensorFlow", "store": "the feature store (nothing recomputed)"}
st.caption(f"{analysis.images} images, {analysis.per_class} in the smallest class; block outputs from "
           f"{where.get(analysis.engine, analysis.engine)}; {analysis.seconds:.1f} s.")
if not analysis.layered:
    st.warning("This backbone is an opaque TF Hub layer: only its final vector can be read, so the depth "
               "probe has a single point. Layered backbones (the bundled one) show every block.")

best, suggested = analysis.depth[analysis.best_block], analysis.suggested_frozen
n_blocks = len(analysis.depth)
c1, c2, c3 = st.columns(3)
c1.metric("Best block", best.block, f"{best.accuracy:.1%} ± {best.std:.1%}", delta_color="off", delta_arrow="off")
c2.metric("Last block (feature extraction)", f"{analysis.depth[-1].accuracy:.1%}",
          f"± {analysis.depth[-1].std:.1%}", delta_color="off", delta_arrow="off")
c3.metric("Suggested frozen blocks", frozen_text(suggested) if suggested != ALL else f"all ({n_blocks})")
slider = n_blocks - 1 if s.frozen_blocks == ALL else s.frozen_blocks - 1
chart(depth_figure(analysis, slider if slider >= 0 else None))
st.caption("Each point: a standardised logistic regression on that block's global-average-pooled output, "
           "stratified k-fold accuracy (mean ± std). The bars: what fine-tuning from that block on would train. "
           "The suggestion is feature extraction unless an earlier block beats the last by more than its spread.")
if editing() and st.button(f"Use {frozen_text(suggested)} frozen blocks on the Train page", icon=":material/tune:"):
    s.frozen_blocks = suggested
    s.pop("w_frozen", None)  # the Train slider re-seeds from frozen_blocks
    st.switch_page("app_pages/train.py")

st.subheader("How much data")
chart(size_figure(analysis))
if analysis.forecast:
    st.markdown("**Forecast (an estimate from the fitted curve, 95% bootstrap interval):** " + "; ".join(
        f"{f.per_class} training images per class → about {f.accuracy:.1%} ({f.low:.1%} to {f.high:.1%})"
        for f in analysis.forecast))
else:
    st.info("Too few sizes to fit a curve: sample more images per class for a forecast.")
st.caption("Each point: the probe on the last block, trained on that many random images per class and scored on "
           "the rest, repeated over random draws (mean ± std).")

backbones.section()
