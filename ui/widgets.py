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


def report_downloads(container, target: str) -> None:
    """"Build the report and slides" for a run or sweep id, then both downloads (kept for this target)."""
    from core.report import report
    from core.slides import deck

    s = st.session_state
    if container.button("Build the report and slides", icon=":material/description:", key=f"build_{target}"):
        with st.spinner("Rendering the report and the slides (figures, Grad-CAM of the mistakes)..."):
            s.report_files = (target, report(target), deck(target))
    if s.get("report_files", (None,))[0] == target:
        _, page, slides = s.report_files
        container.download_button("Download the report (HTML)", page, f"{target}.html", "text/html")
        container.download_button("Slides (HTML)", slides, f"{target}-slides.html", "text/html",
                                  help="One full-screen slide per result: arrow keys or space to move, F for full "
                                       "screen; prints one slide per page.")
