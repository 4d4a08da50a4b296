"""Small rendering helpers used by several pages."""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.run_summary import RunSummary
from core.runs import RunState, list_runs


def pick_run(label: str = "Run", completed_only: bool = True, key: str = "run_picker"):
    """A select box over runs (newest first), remembering the choice in session state; None if none."""
    runs = [r for r in list_runs() if r.state == RunState.COMPLETED or not completed_only]
    if not runs:
        st.info("No completed runs yet. Train one on the **Train** page (the defaults work).")
        return None
    ids = [r.id for r in runs]
    current = st.session_state.run_id if st.session_state.run_id in ids else ids[0]
    chosen = st.selectbox(label, ids, index=ids.index(current), key=key,
                          format_func=lambda i: RunSummary.of(runs[ids.index(i)]).label())
    st.session_state.run_id = chosen
    return runs[ids.index(chosen)]


def show_error(exc: StudioError) -> None:
    st.error(str(exc), icon=":material/error:")


def show_nearest(container, rows: list[dict], views) -> None:
    """Training images (rows of relpath, label, similarity, and 'image' if already made) side by side."""
    from core.viz.images import thumbnail

    cols = container.columns(max(len(rows), 1))
    for col, row in zip(cols, rows):
        image = row.get("image") or thumbnail(views.image(row["relpath"]), 112)
        col.image(image, caption=f"{row['label']} · {row['similarity']:.2f}", width=96)
