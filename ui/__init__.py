"""Streamlit helpers shared by the pages: session state, cached resources, small widgets.

Only this package and app_pages/ import streamlit; neither imports TensorFlow directly.
"""
