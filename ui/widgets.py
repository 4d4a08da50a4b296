"""Small rendering helpers used by several pages."""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.runs.store import RunState
from core.runs.summary import RunSummary
from ui import state


def pick_run(label: str = "Run", *, completed_only: bool = True, key: str = "run_picker"):
    """A select box over runs (newest first), remembering the choice in session state and in the address
    (?run=ID, so the address is a link to it); a link's run is the first choice. None if there is no run."""
    runs = [r for r in state.run_store().runs() if r.state == RunState.COMPLETED or not completed_only]
    ids = [r.id for r in runs]
    linked = linked_run(ids)
    if not runs:
        st.info("No completed runs yet. Train one on the **Train** page (the defaults work).")
        return None
    if linked:
        st.session_state.run_id = linked
        st.session_state.pop(key, None)  # the select box follows the link, not its last value
    current = st.session_state.run_id if st.session_state.run_id in ids else ids[0]
    chosen = st.selectbox(label, ids, index=ids.index(current), key=key,
                          format_func=lambda i: RunSummary.of(runs[ids.index(i)]).label())
    st.session_state.run_id = chosen
    show_run_in_address(chosen)
    return runs[ids.index(chosen)]


def linked_run(ids: list[str]) -> str | None:
    """The run a link names (?run=ID) if it is one of `ids`, the first time this session meets that link;
    otherwise a sentence saying why it cannot be opened here, and None."""
    s = st.session_state
    wanted = st.query_params.get("run")
    if not wanted or s.get("linked_run") == wanted:
        return None
    s.linked_run = wanted
    if wanted in ids:
        return wanted
    try:
        run = state.run_store().load(wanted)
    except StudioError:
        why = "there is no such run in this studio (it may have been deleted, or made on another machine)"
    else:
        why = (f"it is damaged ({'; '.join(run.damaged)})" if run.damaged else
               f"it is {run.state}, and only a completed run can be shown here")
    st.warning(f"The link names run {wanted!r}, but {why}. Choose a run below instead.", icon=":material/link_off:")
    return None


def show_run_in_address(run_id: str) -> None:
    """?run=ID in the address bar, so that copying it gives a link to this run."""
    st.session_state.linked_run = run_id
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id


def run_link(run_id: str) -> str:
    """A link that opens this run on the current page (without this tab's ?s= token: others get their own)."""
    base = st.context.url or ""
    return f"{base}?run={run_id}"


def show_error(exc: StudioError) -> None:
    st.error(str(exc), icon=":material/error:")


def show_nearest(container, rows: list[dict], views) -> None:
    """Training images (rows of relpath, label, similarity, and 'image' if already made) side by side."""
    from core.images import thumbnail

    cols = container.columns(max(len(rows), 1))
    for col, row in zip(cols, rows, strict=False):
        image = row.get("image") or thumbnail(views.image(row["relpath"]), 112)
        col.image(image, caption=f"{row['label']} · {row['similarity']:.2f}", width=96)


def report_downloads(container, target: str) -> None:
    """"Build the report and slides" for a run or sweep id, then both downloads (kept for this target)."""
    from core.present.report import render_report
    from core.present.sections import story
    from core.present.slides import render_deck

    s = st.session_state
    if container.button("Build the report and slides", icon=":material/description:", key=f"build_{target}"):
        with st.spinner("Rendering the report and the slides (figures, Grad-CAM of the mistakes)..."):
            told = story(state.run_store(), target)  # computed once (Grad-CAM included), rendered twice
            s.report_files = (target, render_report(told), render_deck(told))
    if s.get("report_files", (None,))[0] == target:
        _, page, slides = s.report_files
        container.download_button("Download the report (HTML)", page, f"{target}.html", "text/html")
        container.download_button("Slides (HTML)", slides, f"{target}-slides.html", "text/html",
                                  help="One full-screen slide per result: arrow keys or space to move, F for full "
                                       "screen; prints one slide per page.")
