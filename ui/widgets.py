"""Small rendering helpers used by several pages."""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.runs import list_runs


def run_label(run) -> str:
    c = run.config
    frozen = "all frozen" if c.frozen_blocks < 0 else f"{c.frozen_blocks} frozen"
    acc = ""
    if run.state == "completed":
        val = run.metrics().get("val_accuracy")
        acc = f" - val {val:.1%}" if val is not None else ""
    name = c.dataset.rsplit("/", 1)[-1]
    return f"{run.id} - {name}, {c.backbone}, {frozen}, {c.head}{acc} [{run.state}]"


def pick_run(label: str = "Run", completed_only: bool = True, key: str = "run_picker"):
    """A select box over runs (newest first), remembering the choice in session state; None if none."""
    runs = [r for r in list_runs() if r.state == "completed" or not completed_only]
    if not runs:
        st.info("No completed runs yet. Train one on the **Train** page (the defaults work).")
        return None
    ids = [r.id for r in runs]
    current = st.session_state.run_id if st.session_state.run_id in ids else ids[0]
    chosen = st.selectbox(label, ids, index=ids.index(current), key=key,
                          format_func=lambda i: run_label(runs[ids.index(i)]))
    st.session_state.run_id = chosen
    return runs[ids.index(chosen)]


def show_error(exc: StudioError) -> None:
    st.error(str(exc), icon=":material/error:")
