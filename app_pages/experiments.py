"""Experiments: sweeps over sample size, frozen depth, augmentation, head and backbone; the
comparison table in the seeds' form; side-by-side comparison of a few runs; report and export."""

from dataclasses import replace

import streamlit as st

from core.backbones import available_offline, list_specs
from core.backbones.depth import ALL, frozen_choices, frozen_text, parse_frozen
from core.errors import StudioError
from core.present import figures
from core.present.tables import runs_table
from core.present.views import RunViews, learning_curve_points
from core.runs import executors, sweeps
from core.runs.runs_table import COLUMNS, comparison_rows, rows_csv
from core.runs.store import RunState
from core.runs.summary import RunSummary, describe_progress
from core.training.config import HEADS
from ui import resources, state
from ui.presenting import chart, editing, hidden_note, table
from ui.widgets import report_downloads, show_error

s, store = st.session_state, state.run_store()
st.title("Experiments")
st.caption("Train a grid of runs, with one seed or several, and compare them in one table: how much data, how much of "
           "the backbone to fine-tune, whether augmentation helps.")
where = resources.executor_info(executors.address())
if where.problem:
    st.warning(where.sentence(), icon=":material/lan:")
else:
    st.caption(f":material/lan: {where.sentence()}")

try:
    dataset = resources.dataset(s.dataset, s.get("dataset_stamp", 0.0))
except StudioError as exc:
    show_error(exc)
    st.stop()

if editing():
    with st.expander("New sweep", expanded=not sweeps.list_sweeps(store)):
        st.markdown(f"**Data:** {s.dataset_label} ({len(dataset.classes)} classes; change on the Data page)")
        c1, c2, c3 = st.columns(3)
        biggest = max(dataset.counts().values())
        size_options = sorted({n for n in (5, 10, 20, 50, 100, 150, 300) if n <= biggest} | {biggest})
        sizes = c1.multiselect("Images per class", size_options, default=[n for n in (20, 50) if n in size_options]
                               or size_options[:1])
        n_blocks = resources.block_count(s.backbone)
        depth_options = [frozen_text(d) for d in frozen_choices(n_blocks)]
        usual = [frozen_text(d) for d in (ALL, n_blocks - 3)]
        depths = c2.multiselect(f"Frozen blocks (of {n_blocks})", depth_options,
                                default=[d for d in usual if d in depth_options])
        augment = c3.multiselect("Augmentation", ["off", "on"], default=["off"])
        c1, c2, c3 = st.columns(3)
        heads = c1.multiselect("Heads", list(HEADS), default=["dense"])
        offline = [sp.name for sp in list_specs() if available_offline(sp)]
        backbones = c2.multiselect("Backbones", offline, default=[s.backbone if s.backbone in offline else offline[0]])
        epochs = c3.number_input("Epochs per run", 1, 200, 10)
        base = state.train_config(epochs=int(epochs))
        repeats = c3.number_input("Seeds per point", 1, 5, 1, help="Repeat every point with another sample, split "
                                  "and start: the spread between seeds shows how much a difference can be trusted.")
        spec = sweeps.SweepSpec(
            base=base,
            per_class=tuple(sizes),
            frozen_blocks=tuple(parse_frozen(d) for d in depths),
            augment=tuple(a == "on" for a in augment),
            heads=tuple(heads),
            backbones=tuple(backbones),
            seeds=tuple(range(base.seed, base.seed + int(repeats))),
        )
        points = spec.points()
        estimate = sweeps.estimate(points, [min(p.per_class, biggest) * len(dataset.classes) for p in points])
        slots = int(where.cpus) if where.kind != "local" and where.cpus >= 1 else 1  # the cluster trains side by side
        on = f"the cluster's {slots} CPU slots" if slots > 1 else "this machine's CPU"
        shared = replace(estimate, seconds=estimate.seconds / slots)
        st.markdown(f"**{len(points)} runs**, {shared.text()} on {on}: one forward pass per image with the feature "
                    f"cache, one per image and epoch with augmentation, at the pace of the runs finished here.")
        name = st.text_input("Name (optional)", placeholder="digits: size x depth")
        if st.button("Start the sweep", type="primary", disabled=not points, icon=":material/play_arrow:"):
            try:
                sweep = sweeps.create_sweep(store, spec, name)
                s.sweep_id = sweep.id
            except StudioError as exc:
                show_error(exc)
else:
    hidden_note("new sweeps")

all_sweeps = sweeps.list_sweeps(store)
if all_sweeps:
    ids = [sw.id for sw in all_sweeps]
    current = s.get("sweep_id") if s.get("sweep_id") in ids else ids[0]
    s.sweep_id = st.selectbox("Sweep", ids, index=ids.index(current),
                              format_func=lambda i: all_sweeps[ids.index(i)].label)
    active = sweeps.load_sweep(store, s.sweep_id).active

    @st.fragment(run_every=2.0 if active else None)
    def sweep_view():
        sweep = sweeps.load_sweep(store, s.sweep_id)
        progress = sweep.progress()
        total = len(sweep.run_ids)
        done = progress.get("completed", 0)
        st.progress(done / total, text=f"{done} of {total} runs completed - " +
                    ", ".join(f"{n} {k}" for k, n in progress.items()))
        c1, c2, _ = st.columns([1, 1, 3])
        if editing() and c1.button("Resume (queue missing or failed runs)", disabled=sweep.done or sweep.active,
                                   help="Available once the sweep's queued runs have finished."):
            sweeps.resume(store, sweep.id)
        if editing() and c2.button("Cancel the sweep", disabled=not sweep.active):
            sweeps.cancel_sweep(store, sweep.id)
        for run in [r for r in sweep.runs() if r is not None and r.state == RunState.RUNNING]:  # where each is
            node = f" on node {run.status['node'][:8]}" if run.status.get("node") else ""
            bars, _ = describe_progress(run.status.get("progress") or {})
            st.caption(f"Run {run.id}{node}: {bars[0][1] if bars else run.status.get('message', '')}")
        rows = comparison_rows([r for r in sweep.runs() if r is not None])
        if rows:
            table(runs_table(rows, COLUMNS))
            c1, c2 = st.columns(2)
            c1.download_button("Table (CSV)", rows_csv(rows), f"{sweep.id}.csv", "text/csv")
            report_downloads(c2, sweep.id)
            points_ = learning_curve_points([r for r in sweep.runs() if r is not None])
            if len({p["per_class"] for p in points_}) > 1:
                chart(figures.learning_curve(points_))
        if active and not sweep.active:
            st.rerun()

    sweep_view()

st.subheader("Compare runs side by side")
completed = [r for r in store.runs() if r.state == RunState.COMPLETED]
if len(completed) < 2:
    st.info("Train at least two runs to compare them.")
    st.stop()
labels = {r.id: RunSummary.of(r).label() for r in completed}
chosen = st.multiselect("Two to four runs", list(labels), default=list(labels)[:2], max_selections=4,
                        format_func=labels.get)
if len(chosen) >= 2:
    runs = {rid: next(r for r in completed if r.id == rid) for rid in chosen}
    table(runs_table(comparison_rows(list(runs.values())), COLUMNS))
    chart(figures.compare_curves({rid: r.history() for rid, r in runs.items()}))
    chart(figures.compare_per_class({rid: r.metrics()["per_class"] for rid, r in runs.items()}))
    cols = st.columns(len(chosen))
    for col, (rid, run) in zip(cols, runs.items(), strict=False):
        chart(RunViews(run).confusion(normalise=True).update_layout(title=rid, height=380, showlegend=False), col,
              key=f"cmp_{rid}")
