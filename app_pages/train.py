"""Train: choose the backbone and how much of it stays frozen, set the schedule, train, watch."""

import streamlit as st

from core.backbones import available_offline, custom_name, get_spec, list_specs
from core.backbones.depth import ALL
from core.data.sampling import sample_text
from core.errors import StudioError
from core.model.metrics import accuracy_text
from core.present.blocks import blocks_figure
from core.present.figures import training_curves
from core.runs import executors, jobs
from core.runs.store import RunState
from core.runs.summary import describe_progress
from core.training.config import HEADS
from core.training.trainer import parameter_counts
from ui import resources, state
from ui.presenting import chart, editing, hidden_note, presenting
from ui.sections import lr_finder
from ui.widgets import show_error

s, store = st.session_state, state.run_store()
st.title("Train")

specs = list_specs()
names = [sp.name for sp in specs]
offline = {sp.name: available_offline(sp) for sp in specs}
CUSTOM = "custom"
choice = st.selectbox("Pretrained backbone", names + [CUSTOM], disabled=presenting(),
                      key=state.bind("w_backbone", s.backbone if s.backbone in names else CUSTOM),
                      format_func=lambda n: "Custom: a TF Hub handle or a local SavedModel folder" if n == CUSTOM
                      else get_spec(n).title + ("" if offline[n] else "  (needs a download)"))
if choice == CUSTOM:
    handle = st.text_input("TF Hub handle or SavedModel folder", key=state.bind(
        "w_custom", s.backbone.removeprefix("custom:") if s.backbone.startswith("custom:") else ""),
        placeholder="/models/my_feature_vector or https://tfhub.dev/...")
    if not handle:
        st.stop()
    s.backbone = custom_name(handle)
else:
    s.backbone = choice
try:
    backbone = resources.summary(s.backbone)
    dataset = resources.dataset(s.dataset, s.get("dataset_stamp", 0.0))
except StudioError as exc:
    show_error(exc)
    st.stop()

infos = backbone.block_infos
n_blocks = len(infos)
current = n_blocks if s.frozen_blocks == ALL else min(s.frozen_blocks, n_blocks)
state.bind("w_frozen", current)
if s.get("w_frozen_of") != n_blocks:  # another backbone: "all" stays all (Lite1 has 23 blocks to Lite0's 18)
    s.w_frozen, s.w_frozen_of = current, n_blocks
frozen = st.slider(f"Frozen blocks (of {n_blocks}, from the input side)", 0, n_blocks, key="w_frozen",
                   disabled=presenting(),
                   help=f"{n_blocks} = feature extraction: only the new head trains. Fewer = fine-tune the last "
                        f"blocks too (after a head-only first phase).")
s.frozen_blocks = ALL if frozen == n_blocks else frozen
if not backbone.layered:
    st.caption("An opaque TF Hub layer: its blocks are groups of its variables (by name, in order of use). "
               "Fine-tuning trains only the unfrozen groups, with BatchNorm statistics kept fixed; without "
               "a cut, features cannot be cached while fine-tuning.")
trainable, frozen_params = parameter_counts(backbone, frozen, len(dataset.classes))
c1, c2, c3 = st.columns(3)
c1.metric("Trainable parameters", f"{trainable:,}")
c2.metric("Frozen parameters", f"{frozen_params:,}")
c3.metric("Trainable share", f"{trainable / (trainable + frozen_params):.1%}")
head_params = backbone.feature_dim * len(dataset.classes) + len(dataset.classes)
chart(blocks_figure(infos, frozen, head_params))
with st.expander("Blocks as a table"):
    st.dataframe([{"block": b.name, "output": "x".join(map(str, b.output_shape)), "parameters": b.params,
                   "status": "frozen" if i < frozen else "trainable"} for i, b in enumerate(infos)],
                 hide_index=True)

submitted = False
if editing():
    lr_finder.apply_chosen_rate()  # before the form's inputs exist in this run
    with st.form("train_form"):
        st.markdown(f"**Data:** {s.dataset_label}, "
                    f"{sample_text(s.per_class, s.fraction)}"
                    f"{', augmented' if s.augment.enabled else ''} (change on the Data page)")
        c1, c2, c3, c4 = st.columns(4)
        head = c1.selectbox("Head", HEADS, format_func={"dense": "Dense softmax", "logreg": "Logistic regression",
                                                       "svm": "Linear SVM", "knn": "k nearest neighbours",
                                                       "nearest-mean": "Nearest class mean"}.get,
                            help="Dense: softmax layer with dropout, trained with Adam. Logistic regression and linear "
                                 "SVM: scikit-learn on the cached feature vectors. k nearest neighbours and nearest "
                                 "class mean train nothing and show the training images behind each prediction. "
                                 "All but dense need every block frozen.")
        epochs = c2.number_input("Epochs", 1, 500, state.DEFAULTS.epochs)
        lr = c3.number_input("Learning rate", 1e-6, 1.0, format="%.5f",
                             key=state.bind("w_lr", state.DEFAULTS.learning_rate))
        batch = c4.number_input("Batch size", 1, 512, state.DEFAULTS.batch_size)
        c1, c2, c3, c4 = st.columns(4)
        fine_tunes = frozen < n_blocks
        two_phase = c1.checkbox("Two phases", state.DEFAULTS.two_phase and fine_tunes, disabled=not fine_tunes,
                                key=f"w_two_phase_{fine_tunes}",
                                help="Phase 1 trains only the head; phase 2 unfreezes down to the chosen depth. "
                                     "With every block frozen there is only the head to train: one phase.")
        factor = c2.number_input("Fine-tune rate factor", 0.001, 1.0, format="%.3f",
                                 key=state.bind("w_factor", state.DEFAULTS.fine_tune_lr_factor),
                                 help="The unfrozen blocks train at the learning rate times this; the head keeps its "
                                      "rate. 0.01 measured best on both demos (BENCHMARKS.md).")
        patience = c3.number_input("Early stopping patience (0 = off)", 0, 100, state.DEFAULTS.early_stopping)
        seed = c4.number_input("Seed", 0, 2**31 - 1, state.DEFAULTS.seed)
        balanced = st.checkbox("Weight classes equally in the loss (for imbalanced data)", state.DEFAULTS.class_weight,
                               help="Each class's images count inversely to how many there are, so a small class "
                                    "matters as much as a large one. Dense, logistic regression and SVM heads.")
        submitted = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")

    with st.container(border=True):
        lr_finder.panel(state.train_config(learning_rate=float(s.w_lr), batch_size=int(batch), seed=int(seed)),
                        fine_tunes=fine_tunes)
else:
    hidden_note("the training settings and the Train button")


def watched_run():
    """This session's latest run (found again after a reload through the ?s= token in the URL)."""
    mine = [r for r in store.runs(verify=False) if r.status.get("owner") == s.token]
    return max(mine, key=lambda r: r.status.get("created", 0)) if mine else None


def submit(config) -> None:
    s.pop("same_run", None)
    s.run_id = executors.current(store).submit(config, owner=s.token)


if submitted:
    try:
        config = state.train_config(head=head, epochs=int(epochs), learning_rate=float(lr), batch_size=int(batch),
                                    two_phase=two_phase if fine_tunes else state.DEFAULTS.two_phase,  # moot: as the CLI
                                    fine_tune_lr_factor=float(factor), early_stopping=int(patience), seed=int(seed),
                                    class_weight=balanced)
        latest = watched_run()
        same = next((r for r in store.runs(verify=False) if r.state == RunState.COMPLETED
                     and r.config.to_json() == config.to_json()), None)
        if latest is not None and latest.state.active and latest.config.to_json() == config.to_json():  # clicked twice
            st.info(f"Run {latest.id} with these settings is already {latest.state}, so it was not queued again. "
                    f"Change a setting to queue another run.", icon=":material/info:")
        elif same is not None:  # the same settings and seed train the same run again: say so, and let the user choose
            s.same_run = (same.id, config)
        else:
            submit(config)
    except StudioError as exc:
        show_error(exc)

if s.get("same_run") and editing():
    same_id, same_config = s.same_run
    st.info(f"This exact run exists: run {same_id}, with the same data, settings and seed, so training it again gives "
            f"the same result. Open it, change the seed (another sample, split and start) or a setting, or train it "
            f"again anyway.", icon=":material/content_copy:")
    left, right = st.columns([1, 3])
    left.page_link("app_pages/results.py", label=f"Open run {same_id}", icon=":material/insights:",
                   query_params={"run": same_id})
    if right.button("Train again anyway", icon=":material/replay:"):
        try:
            submit(same_config)
        except StudioError as exc:
            show_error(exc)


watched = watched_run()
active = watched is not None and watched.state.active


@st.fragment(run_every=0.5 if active else None)  # a default run takes about two seconds: see it end soon
def live_progress():
    run = watched_run()
    if run is None:
        return
    if active and not run.state.active:
        st.rerun()  # finished: one full rerun stops the polling and refreshes the sidebar
    status = run.status
    if run.state == RunState.QUEUED:  # worked out before drawing, so the header and its status change together
        executors.ensure_all(store)
        position = jobs.queue_position(store, run.id) or 1
        running = any(r.state == RunState.RUNNING for r in store.runs(verify=False))
        waiting = (status.get("message", "").capitalize() + "." if status.get("cluster")
                   else f"Queued: position {position} (one training at a time)." if running or position > 1
                   else "Starting a training worker...")
    with st.container(key=f"run-{run.id}"):  # a run's own container: nothing of the last run stays under its heading
        run_status(run, status, waiting if run.state == RunState.QUEUED else "")


def run_status(run, status: dict, waiting: str) -> None:
    st.subheader(f"Run {run.id}")
    if run.state == RunState.QUEUED:
        st.info(waiting)
    elif run.state == RunState.RUNNING:
        bars, caption = describe_progress(status.get("progress") or {})
        for fraction, text in bars:
            st.progress(fraction, text=text)
        if caption:
            st.caption(caption)
        if editing() and st.button("Cancel", icon=":material/stop:"):
            jobs.cancel(store, run.id)
    elif run.state == RunState.COMPLETED:
        m = run.metrics()
        st.success(f"Done in {m.get('seconds', 0):.1f} s: validation accuracy "
                   f"{accuracy_text(m.get('val_accuracy'), m.get('val_accuracy_interval'))} (95% interval).")
        st.page_link("app_pages/results.py", label="See the results", icon=":material/insights:")
    else:
        st.error(f"{run.state.capitalize()}: {status.get('message', '')}")
    history = run.history()
    if history and history[0].get("loss") is not None:
        chart(training_curves(history, "Live training curves"))


live_progress()
