"""Per-user session state, initialised in one place."""

from __future__ import annotations

import streamlit as st

from core.config import ALL, TrainConfig
from core.data.augment import AugmentConfig

DEFAULTS = TrainConfig()

_INITIAL = {
    "dataset": DEFAULTS.dataset,  # demo name, folder path or zip path
    "dataset_label": "digits (demo)",
    "per_class": DEFAULTS.per_class,
    "fraction": None,
    "val_fraction": DEFAULTS.val_fraction,
    "test_fraction": DEFAULTS.test_fraction,
    "augment": AugmentConfig(),
    "backbone": DEFAULTS.backbone,
    "frozen_blocks": ALL,
    "run_id": None,  # the run the results, activations and predict pages show
    "my_runs": [],  # runs this session started (newest last)
}


def init() -> None:
    for key, value in _INITIAL.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, list) else value


def train_config(**form) -> TrainConfig:
    """The TrainConfig for the current data and model choices plus the train form's values."""
    s = st.session_state
    return TrainConfig(dataset=s.dataset, backbone=s.backbone, frozen_blocks=s.frozen_blocks, per_class=s.per_class,
                       fraction=s.fraction, val_fraction=s.val_fraction, test_fraction=s.test_fraction,
                       augment=s.augment, **form)


def bind(widget_key: str, value) -> str:
    """Seed a keyed widget from the canonical value. Streamlit drops widget state when a page is
    left, so the canonical value lives under its own key and re-seeds the widget on return."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = value
    return widget_key
