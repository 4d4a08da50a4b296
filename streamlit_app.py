"""Entry point: page config, shared sidebar and navigation over pages/."""

import streamlit as st

st.set_page_config(page_title="Transfer Learning Studio", page_icon=":material/model_training:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
]
st.navigation(pages).run()
