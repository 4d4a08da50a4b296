"""Results: every run in a table; for one run its metrics, curves, confusion, mistakes, features."""

import math

import streamlit as st

from core.backbones.registry import backbone_title
from core.errors import StudioError
from core.inference.export import export_zip
from core.inference.formats import EXPORTS, FORMATS
from core.present.tables import runs_table
from core.present.views import RunViews
from core.runs.store import RunState
from core.runs.summary import RunSummary
from ui import state
from ui.presenting import chart, editing, hidden_note, presenting, table
from ui.sections import trust as ui_trust
from ui.widgets import linked_run, report_downloads, run_link, show_error, show_nearest, show_run_in_address

CELL_PAGE = 24  # images of a confusion-matrix cell shown at once

s = st.session_state
st.title("Results")

store = state.run_store()
runs = store.runs()
ids = [r.id for r in runs]
linked = linked_run(ids)
if not runs:
    st.info("No runs yet. Train one on the **Train** page; the defaults work.")
    st.stop()


def row(run):
    summary = RunSummary.of(run).row()
    return {"run": run.id, "yours": "yes" if run.status.get("owner") == s.token else "",
            **{k: v for k, v in summary.items() if k != "run"}, "backbone": backbone_title(summary["backbone"])}


st.caption("Select a row to open the run. Runs started from this browser tab are marked *yours*; "
           "runs prepared by others stay listed for presentations and comparisons.")
picker = st.dataframe(runs_table([row(r) for r in runs]), hide_index=True, on_select="rerun",
                     selection_mode="single-row", key="runs_table")
picked = picker.selection.rows if picker and picker.selection else []
if picked:
    s.run_id = runs[picked[0]].id
elif linked:
    s.run_id = linked
if s.run_id not in ids:  # this session's newest completed run, else anyone's
    completed = [r for r in runs if r.state == RunState.COMPLETED]
    s.run_id = next((r.id for r in completed if r.status.get("owner") == s.token),
                    completed[0].id if completed else ids[0])
run = runs[ids.index(s.run_id)]
show_run_in_address(run.id)

st.divider()
head, link = st.columns([5, 1], vertical_alignment="bottom")
head.subheader(f"Run {run.id}")
with link.popover("Copy link", icon=":material/link:"):
    st.caption("A link that opens this run (paste it into the meeting chat); the copy icon is on the right.")
    st.html("<style>[data-testid='stPopoverBody'] pre{padding-right:3rem}</style>")  # the copy icon sits on the right
    st.code(run_link(run.id), language=None, wrap_lines=True)
if run.state != RunState.COMPLETED:
    (st.error if run.state in (RunState.FAILED, RunState.DAMAGED) else st.info)(
        f"{run.state.capitalize()}: {RunSummary.of(run).message}")
    if run.history():
        from core.present.figures import training_curves

        chart(training_curves(run.history(), "Training curves so far"))
    if editing() and not run.state.active and st.button("Delete this run", icon=":material/delete:"):
        store.delete(run.id)
        s.run_id = None
        st.rerun()
    st.stop()

try:
    views = RunViews(run)
    metrics = run.metrics()
    dataset_info = run.dataset()
except (StudioError, OSError, ValueError) as exc:
    show_error(StudioError(f"Run {run.id} cannot be read: {exc}"))
    st.stop()

summary = RunSummary.of(run)


def with_interval(column, label, accuracy, interval):
    if accuracy is None:
        column.metric(label, "-")
    else:
        column.metric(label, f"{accuracy:.1%}", f"95% CI {interval[0]:.1%} to {interval[1]:.1%}" if interval else None,
                      delta_color="off", delta_arrow="off")


c = st.columns(5)
c[0].metric("Train accuracy", f"{metrics['train_accuracy']:.1%}")
with_interval(c[1], "Validation accuracy", summary.val_accuracy, summary.val_interval)
with_interval(c[2], "Test accuracy", summary.test_accuracy, summary.test_interval)
c[3].metric("Training time", f"{metrics['seconds']:.1f} s")
c[4].metric("Trainable parameters", f"{metrics['trainable_params']:,}")
plan = (metrics.get("plan") or {}).get("description") or (
    "features cached at the cut." if metrics.get("cached_features") else "no feature cache.")
st.caption(f"{dataset_info.get('sample', '')} of {dataset_info.get('name', '')}, trained on "
           f"{metrics.get('device', 'CPU')}: {plan}")
ui_trust.checks(run, dataset_info, metrics)

if any(h.get("loss") is not None for h in run.history()):
    chart(views.curves())
else:
    st.caption(f"The {run.config.head} head is fitted in one step: there are no epochs to plot.")

st.subheader("Confusion matrix (validation)")
normalise = st.toggle("Row-normalised (recall per class)", False)
val = views.predictions["val"]
classes = list(val.classes)
left, right = st.columns([3, 2])
with left:
    event = chart(views.confusion(normalise=normalise), on_select="rerun", selection_mode="points",
                  key=f"confusion_{run.id}")
points = event.selection.points if event and event.selection else []
clicked = (points[0]["y"], points[0]["x"]) if points else None
if clicked and clicked != s.get("cell_clicked"):  # a new click picks its cell; the boxes can then move on
    s.cell_true, s.cell_pred = clicked
s.cell_clicked = clicked
for key in ("cell_true", "cell_pred"):
    if s.get(key) not in classes:
        s[key] = classes[0]
with right:
    st.markdown("**Images in a cell**: click a cell, or choose")
    true_cls = st.selectbox("True class", classes, key="cell_true")
    pred_cls = st.selectbox("Predicted as", classes, key="cell_pred")
    names = val.cell(classes.index(true_cls), classes.index(pred_cls))
    pages = max(1, math.ceil(len(names) / CELL_PAGE))
    number = st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"cell_page_{true_cls}_{pred_cls}") \
        if pages > 1 else 1
    start = (number - 1) * CELL_PAGE
    shown = names[start:start + CELL_PAGE]
    st.caption(f"{len(names):,} image(s)" + (f"; showing {start + 1:,}-{start + len(shown):,}" if pages > 1 else ""))
    if shown:
        side = 150 if presenting() else 112  # wide enough that a file name's caption does not wrap
        st.image([views.image(n, side) for n in shown],
                 caption=[n.rsplit("/", 1)[-1].rsplit(".", 1)[0] for n in shown], width=side)
    confused = val.most_confused()
    if confused:
        st.markdown("**Most confused:** " + "; ".join(f"{t} as {p} ({n})" for t, p, n in confused[:5]))

st.subheader("Per-class scores (validation)")
left, right = st.columns([2, 3])
table([{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in val.per_class()], left)
chart(views.per_class(), right)

ui_trust.calibration(run, metrics)
ui_trust.corrections_compare(run)
ui_trust.kfold(run, summary)

st.subheader("Misclassified images, highest loss first")
with_saliency = st.toggle("Show Grad-CAM saliency (what the model looked at)", False)
with st.spinner("Computing Grad-CAM for each mistake (the backbone loads the first time)..." if with_saliency
                else "Finding the mistakes..."):
    wrong = views.misclassified(k=12, saliency=with_saliency)
if not wrong:
    st.success("Every validation image was classified correctly.")
else:
    cols = st.columns(6)
    for i, r in enumerate(wrong):
        cols[i % 6].image(r["saliency"] if with_saliency else r["image"],
                          caption=f"{r['true']} → {r['predicted']} ({r['probability']:.1%})", width=112)
    if views.model.explains:
        head = views.model.head
        k = f" (k = {head.k}, chosen by leaving each training image out)" if hasattr(head, "k") else ""
        st.markdown(f"**Why:** the {run.config.head} head{k} predicts from the training images nearest in feature "
                    "space. For each mistake, its five nearest training images (label · cosine similarity):")
        for r in wrong[:6]:
            left, right = st.columns([1, 5])
            left.image(r["image"], caption=f"{r['true']} → {r['predicted']}", width=96)
            show_nearest(right, views.nearest_training(views.image(r["name"])), views)

st.subheader("Feature space")
c1, c2, c3 = st.columns(3)
dims = c1.radio("Dimensions", [2, 3], horizontal=True)
method = c2.radio("Projection", ["pca", "tsne"], horizontal=True, format_func=str.upper)
split_name = c3.radio("Images", ["val", "train"], horizontal=True,
                      format_func={"val": "validation", "train": "training"}.get)
if st.button("Show the feature vectors", icon=":material/scatter_plot:"):
    s.embedding_shown = run.id  # stays shown through later clicks (and follows the choices above) for this run
if s.get("embedding_shown") == run.id:
    wanted = (run.id, split_name, dims, method)
    if s.get("embedding", (None,))[0] != wanted:  # computed once per choice, not on every later click
        with st.spinner("Computing feature vectors..."):
            s.embedding = (wanted, views.embedding(split_name, dims, method))
    chart(s.embedding[1], key="embedding")

st.subheader("Downloads")
c1, c2, c3, c4 = st.columns(4)
c1.download_button("Metrics (CSV)", views.metrics_csv(), f"{run.id}-metrics.csv", "text/csv")
c2.download_button("Predictions (CSV)", (run.dir / "predictions.csv").read_bytes(), f"{run.id}-predictions.csv",
                   "text/csv")
report_downloads(c3, run.id)
with c4:
    if presenting():
        hidden_note("model exports")
        st.stop()
    fmt = st.selectbox("Export the model as", FORMATS, format_func=lambda name: EXPORTS[name].title)
    if st.button("Build the export", icon=":material/deployed_code:"):
        try:
            with st.spinner(f"Exporting and checking the {fmt} model against this run..."):
                s.run_export = (run.id, fmt, export_zip(store, run.id, fmt))
        except StudioError as exc:
            show_error(exc)
    if s.get("run_export", (None, None))[:2] == (run.id, fmt):
        st.download_button("Download the export (zip)", s.run_export[2], f"{run.id}-{fmt}.zip", "application/zip")
