"""Entry point: page config, session state, shared sidebar and navigation over app_pages/ in the workflow's
sections (Prepare, Train, Study)."""

from pathlib import Path

import streamlit as st

from core import paths
from core.native_log import native_logs_to_file
from ui import state
from ui.sidebar import sidebar

native_logs_to_file(paths.native_log())  # TensorFlow's C++ log lines, once TensorFlow loads, go to a file
# A local icon: a :material/...: page icon makes the browser fetch the favicon from fonts.gstatic.com.
ICON = Path(__file__).parent / "assets" / "favicon.png"
st.set_page_config(page_title="Transfer Learning Studio", page_icon=str(ICON), layout="wide")
state.init()

# The sidebar follows the workflow: prepare the data, train, then study what the model learned.
pages = {
    "": [st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Prepare": [st.Page("app_pages/data.py", title="Data", icon=":material/photo_library:"),
                st.Page("app_pages/analyze.py", title="Analyze", icon=":material/query_stats:")],
    "Train": [st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
              st.Page("app_pages/experiments.py", title="Experiments", icon=":material/table_chart:")],
    "Study": [st.Page("app_pages/results.py", title="Results", icon=":material/insights:"),
              st.Page("app_pages/activations.py", title="Activations", icon=":material/visibility:"),
              st.Page("app_pages/predict.py", title="Predict", icon=":material/image_search:")],
}
page = st.navigation(pages)
sidebar()
page.run()
