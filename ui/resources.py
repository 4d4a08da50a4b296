"""Cached loaders: backbones and run models with st.cache_resource, pure data with st.cache_data."""

from __future__ import annotations

import streamlit as st

from core.data.dataset import Dataset


@st.cache_resource(show_spinner="Loading the backbone...", max_entries=2)
def backbone(name: str):
    from core.backbones import load_backbone

    return load_backbone(name)


@st.cache_data(show_spinner="Counting the backbone's blocks...", max_entries=16)
def block_count(name: str) -> int:
    """How many blocks a backbone has, without loading its weights where the architecture tells."""
    from core.backbones import architecture_summary, get_spec

    summary = architecture_summary(get_spec(name))
    return summary[0] if summary else backbone(name).num_blocks


@st.cache_resource(show_spinner="Loading TensorFlow and checking the bundled model...")
def environment():
    from core.environment import describe

    return describe()


def dataset(spec: str, stamp: float = 0.0) -> Dataset:
    """The scanned dataset for a demo name, folder or zip path; a new stamp rescans after edits. A
    progress bar shows while the files are checked (only when they are: a cached result is instant)."""
    bar = st.empty()
    try:
        return _scanned(spec, stamp, _progress=lambda done, total: bar.progress(
            done / total, text=f"Checking the images: {done:,} of {total:,}"))
    finally:
        bar.empty()


@st.cache_data(show_spinner="Scanning and validating the images...", max_entries=8)
def _scanned(spec: str, stamp: float, _progress=None) -> Dataset:
    from core.data.sources import load_dataset

    return load_dataset(spec, progress=_progress)  # _progress: not part of the cache key


@st.cache_data(max_entries=256, show_spinner=False)
def thumbnail(path: str, size: int = 96):
    from core.data.decode import load_array

    return load_array(path, size)
