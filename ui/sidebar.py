"""The shared sidebar: what is selected now (dataset, backbone, run)."""

from __future__ import annotations

import streamlit as st

from core.backbones import get_spec
from core.data.sampling import sample_text
from core.errors import StudioError
from core.runs.summary import RunSummary
from ui import presenting, state


def sidebar() -> None:
    s = st.session_state
    with st.sidebar:
        presenting.toggle()
        st.caption("NEXT TRAINING USES")
        st.markdown(f"**Data:** {s.dataset_label}")
        st.markdown(f"**Sample:** {sample_text(s.per_class, s.fraction)}")
        st.markdown(f"**Backbone:** {get_spec(s.backbone).title}")
        if s.run_id:
            try:
                run = RunSummary.of(state.run_store().load(s.run_id))
            except StudioError:
                s.run_id = None
                return
            st.caption("OPEN RUN")  # a linked run may differ from the next training's choices: its own
            st.markdown(f"**Run:** `{run.id}` ({run.state})")
            st.markdown(f"**Data:** {run.dataset}, {run.sample_words}")
            st.markdown(f"**Backbone:** {_title(run.backbone)}, {run.frozen_phrase}")


def _title(backbone: str) -> str:
    try:
        return get_spec(backbone).title
    except StudioError:
        return backbone
