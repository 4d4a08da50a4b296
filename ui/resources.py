"""Cached loaders: backbones with st.cache_resource, thumbnails and block counts with st.cache_data,
scanned datasets in a small dict of their own (see dataset)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from core.data.dataset import Dataset
from core.runs import executors
from core.runs.executors import ExecutorInfo
from ui import state
from ui.progress import counted_bar

EXAMPLES_AT_ONCE = 5_000  # a dataset's images; above, the Data page shows its example pictures on request


@st.cache_resource(show_spinner="Loading the backbone...", max_entries=2)
def backbone(name: str):
    from core.backbones import load_backbone

    return load_backbone(name)


@st.cache_resource(show_spinner="Reading the backbone's blocks...", max_entries=8)
def summary(name: str):
    """Blocks and parameters for the Train page: the bundled architecture's without TensorFlow."""
    from core.backbones import describe

    return describe(name)


@st.cache_data(show_spinner="Counting the backbone's blocks...", max_entries=16)
def block_count(name: str) -> int:
    """How many blocks a backbone has, without loading its weights where the architecture tells."""
    from core.backbones import architecture_summary, get_spec

    summary = architecture_summary(get_spec(name))
    return summary[0] if summary else backbone(name).num_blocks


@st.cache_resource(show_spinner="Checking the bundled model...")
def environment():
    from core.training.devices import describe

    return describe()


_DATASETS: OrderedDict[tuple[str, float], Dataset] = OrderedDict()  # shared by every session, like cache_data
_DATASETS_LOCK = threading.Lock()
_DATASETS_KEPT = 8


def dataset(spec: str, stamp: float = 0.0) -> Dataset:
    """The scanned dataset for a demo name, folder or zip path; a new stamp rescans after edits. A
    progress bar shows while the files are checked. Not st.cache_data: a cached function cannot draw
    progress (its element replay refuses closures, streamlit/streamlit#10025), so the few datasets
    kept here are held in a small dict; a Dataset is immutable, so sessions can share one."""
    key = (spec, stamp)
    with _DATASETS_LOCK:
        if key in _DATASETS:
            _DATASETS.move_to_end(key)
            return _DATASETS[key]
    from core.data.sources import load_dataset

    bar, progress = counted_bar("Checking the images...", "Checking the images")
    try:
        found = load_dataset(spec, progress=progress)
    finally:
        bar.empty()
    with _DATASETS_LOCK:
        _DATASETS[key] = found
        while len(_DATASETS) > _DATASETS_KEPT:
            _DATASETS.popitem(last=False)
    return found


@st.cache_data(max_entries=256, show_spinner=False)
def thumbnail(path: str, size: int = 96):
    from core.data.decode import load_array

    return load_array(path, size)


@st.cache_data(ttl=30, show_spinner="Asking the cluster what it holds...")
def executor_info(address: str) -> ExecutorInfo:
    """What runs train on; asked again after 30 s, so nodes that join or leave show up."""
    return executors.current(state.run_store(), address).info()
