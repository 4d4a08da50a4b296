"""The shared sidebar: what is selected now (dataset, backbone, run)."""

from __future__ import annotations

import streamlit as st

from core.backbones import get_spec
from core.errors import StudioError
from core.runs.store import load_run
from ui import presenting


def sidebar() -> None:
    s = st.session_state
    with st.sidebar:
        presenting.toggle()
        st.caption("CURRENT SELECTION")
        st.markdown(f"**Data:** {s.dataset_label}")
        sample = f"{s.per_class} per class" if s.per_class else f"{s.fraction:.0%} of each class" if s.fraction \
            else "all images"
        st.markdown(f"**Sample:** {sample}")
        st.markdown(f"**Backbone:** {get_spec(s.backbone).title}")
        if s.run_id:
            try:
                run = load_run(s.run_id)
                st.markdown(f"**Run:** `{run.id}` ({run.state})")
            except StudioError:
                s.run_id = None
