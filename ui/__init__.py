"""Streamlit helpers every page shares: session state, cached resources, uploads, small widgets, presenting
mode. Parts that belong to one page each are in ui/sections/.

Only this package and app_pages/ import streamlit; neither imports TensorFlow directly.
"""
