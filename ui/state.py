"""Per-user session state, initialised in one place."""

from __future__ import annotations

import re
import secrets

import streamlit as st

from core.backbones.depth import ALL
from core.data.augment import AugmentConfig
from core.runs.store import RunStore
from core.training.config import TrainConfig

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
}


def run_store() -> RunStore:
    """The run store the pages work on: the server's (STUDIO_RUNS_DIR, else STUDIO_HOME/runs)."""
    return RunStore.default()


def init() -> None:
    for key, value in _INITIAL.items():
        if key not in st.session_state:
            st.session_state[key] = value.copy() if isinstance(value, list) else value
    session_token()


def session_token() -> str:
    """A random name for this browser tab's work (its uploads and runs). It lives in the URL as ?s=...,
    so a reload finds the same uploads and runs; Streamlit clears query parameters on page changes,
    hence it is written back on every run."""
    s = st.session_state
    if "token" not in s:
        given = st.query_params.get("s", "")
        s.token = given if re.fullmatch(r"[A-Za-z0-9_-]{8,32}", given) else secrets.token_urlsafe(9)
    if st.query_params.get("s") != s.token:
        st.query_params["s"] = s.token
    return s.token


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
