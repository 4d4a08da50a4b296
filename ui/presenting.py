"""Presenting mode: the same pages, read-only, with larger numbers, text and figures for a meeting room.

A sidebar toggle sets it for this tab. Pages ask `editing()` before drawing a control that changes data,
settings or runs (sources, samples, corrections, training, sweeps, deletions, exports) and draw figures
through `chart`, which makes them taller with larger text while presenting.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.present.tables import runs_table

SCALE = 1.35  # figure height while presenting
FONT = 18  # figure text while presenting (plotly's default is 12)
CSS = """<style>
[data-testid="stMetricValue"]{font-size:clamp(2rem,2.6vw,3.2rem)}
[data-testid="stMetricValue"] div,[data-testid="stMetricDelta"],[data-testid="stMetricDelta"] *,
[data-testid="stMetricLabel"] *{
white-space:normal!important;overflow:visible;text-overflow:clip;height:auto}
[data-testid="stMetricLabel"] p{font-size:1.3rem}
.stMainBlockContainer .stMarkdown p,.stMainBlockContainer .stMarkdown li,[data-testid="stCaptionContainer"] p,
[data-testid="stAlertContentInfo"] p,[data-testid="stAlertContentWarning"] p,[data-testid="stAlertContentSuccess"] p,
[data-testid="stAlertContentError"] p,[data-testid="stRadio"] p{font-size:1.3rem}
[data-testid="stMetricDelta"] div{font-size:1.15rem}
[data-testid="stSidebar"] .stMarkdown p{font-size:1.15rem}
.stMainBlockContainer h1{font-size:3.4rem} .stMainBlockContainer h3{font-size:2.2rem}
[data-testid="stWidgetLabel"] p,[data-testid="stCheckbox"] label p,[data-testid="stSelectbox"] input,
[data-testid="stMultiSelect"] input,[data-testid="stExpander"] summary p{font-size:1.3rem}
[data-testid="stTable"] td,[data-testid="stTable"] th,.stMainBlockContainer table td,
.stMainBlockContainer table th{font-size:1.2rem}
[data-testid="stToolbar"]{display:none}
</style>"""


def presenting() -> bool:
    return bool(st.session_state.get("presenting"))


def editing() -> bool:
    """Whether controls that change data, settings or runs are shown."""
    return not presenting()


def toggle() -> None:
    """The sidebar switch; while on, the page's text and numbers are enlarged."""
    st.toggle("Presenting", key="presenting", help="For a meeting: hides the controls that change data, settings "
              "or runs, and enlarges figures, numbers and text. Every page stays readable.")
    if presenting():
        st.html(CSS)


def table(data, container=None) -> None:
    """st.dataframe, or while presenting an HTML table that the enlarged text applies to (a dataframe is drawn
    on a canvas, out of CSS's reach). `data`: rows, a DataFrame or a pandas Styler."""
    import pandas as pd

    target = container or st
    if not presenting():
        target.dataframe(data, hide_index=True)
        return
    styler = data if isinstance(data, pd.io.formats.style.Styler) else runs_table(data)
    target.table(styler.hide(axis="index"))


def hidden_note(what: str) -> None:
    st.caption(f"Presenting: {what} are hidden. Turn off **Presenting** in the sidebar to change them.")


def chart(fig: go.Figure, container=None, **kwargs):
    """st.plotly_chart at full width; taller and with larger text while presenting (on a copy: figures may
    be cached)."""
    if presenting():
        fig = go.Figure(fig)
        fig.update_layout(height=int((fig.layout.height or 450) * SCALE), font_size=FONT)
        kwargs.setdefault("theme", None)  # Streamlit's theme sets its own, smaller, fonts
    kwargs.setdefault("width", "stretch")
    return (container or st).plotly_chart(fig, **kwargs)
