"""The Train page's learning-rate finder: run core.training.lr_find in this process, plot it, offer its rate."""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.present.figures import rate_curve
from core.training.lr_find import find_for_config
from ui.presenting import chart
from ui.progress import staged_bar
from ui.widgets import show_error

PHASES = {"head": "The head (on the frozen part's vectors)", "fine-tune": "Fine-tuning (the unfrozen blocks)"}
LR_RANGE, FACTOR_RANGE = (1e-6, 1.0), (0.001, 1.0)  # what the Train form's inputs accept


def _clamped(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def apply_chosen_rate() -> None:
    """A widget's value can only be set before the widget is drawn: the choice waits for the next run."""
    chosen = st.session_state.pop("lr_chosen", None)
    if chosen:
        key, value = chosen
        st.session_state[key] = value


def panel(config, fine_tunes: bool) -> None:
    """`config`: the TrainConfig the form would submit now. Sets w_lr or w_factor when asked."""
    s = st.session_state
    st.markdown("**Learning-rate finder**")
    phase = st.radio("Which rate", list(PHASES) if fine_tunes else ["head"], format_func=PHASES.get, horizontal=True)
    if st.button("Find a learning rate", icon=":material/speed:"):
        bar, progress = staged_bar({}, "Preparing the cached inputs")  # each stage fills the bar, named
        try:
            s.lr_curve = find_for_config(config, phase, progress=progress)
        except StudioError as exc:
            show_error(exc)
        finally:
            bar.empty()
    curve = s.get("lr_curve")
    if curve is None:
        st.caption("A short run with the rate growing every batch (fastai's lr_find): the loss falls fastest a "
                   "little before it turns up. Takes seconds for the head, under a minute for fine-tuning.")
        return
    chart(rate_curve(curve.rates, curve.losses, curve.suggested, curve.steepest,
                     f"Loss against the learning rate: {PHASES[curve.phase].lower()}"))
    if curve.phase == "head":
        value = _clamped(curve.suggested, LR_RANGE)
        if st.button(f"Use {value:.2g} as the head's learning rate"):
            s.lr_chosen = ("w_lr", value)
            st.rerun()
    else:
        value = _clamped(curve.suggested / config.learning_rate, FACTOR_RANGE)
        if st.button(f"Use a fine-tune factor of {value:.3g} (rate {curve.suggested:.2g})"):
            s.lr_chosen = ("w_factor", value)
            st.rerun()
