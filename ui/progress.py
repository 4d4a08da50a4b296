"""One progress bar for a core call's progress(stage, done, total): each stage fills its share of the bar and names
what it is doing; a total of 0 marks a step that has just started and has nothing to count yet."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.progress import Counted, Progress


def stage_text(name: str, done: int, total: int) -> str:
    """"name: 3 of 10", or "name..." for a step that has only just started."""
    return f"{name}: {done:,} of {total:,}" if total else f"{name}..."


def staged_bar(stages: dict[str, tuple[float, float, str]], text: str) -> tuple[Any, Progress]:
    """(the bar, the progress callback). stages: stage -> (start, end, words), the share of the bar it fills; an
    unknown stage fills the whole bar and is named as it comes."""
    bar = st.progress(0.0, text=text)

    def report(stage: str, done: int, total: int) -> None:
        start, end, words = stages.get(stage, (0.0, 1.0, stage))
        bar.progress(min(1.0, start + (end - start) * (done / total if total else 0.0)),
                     text=stage_text(words, done, total))

    return bar, report


def counted_bar(text: str, words: str) -> tuple[Any, Counted]:
    """(the bar, a (done, total) callback) for a core call that counts one thing: "words: 3 of 10"."""
    bar = st.progress(0.0, text=text)

    def report(done: int, total: int) -> None:
        bar.progress(min(1.0, done / total if total else 0.0), text=stage_text(words, done, total))

    return bar, report
