"""The Predict page's zip of images: one upload, every image through the run (core.inference.batch), then counts per
class, a sortable table with thumbnails (lowest confidence first) and the CSV."""

from __future__ import annotations

import time

import streamlit as st

from core.data.sources import MAX_ZIP_BYTES, check_zip_size, uploads_dir
from core.errors import StudioError
from core.images import png_data_uri
from core.inference.batch import UNKNOWN, Batch, predict_batch
from core.inference.predict import predictions_csv
from core.present.figures import class_counts
from ui import state, uploads
from ui.presenting import chart
from ui.progress import counted_bar
from ui.widgets import show_error

THUMBNAIL = 64
ROW_HEIGHT = 56


def _receive() -> None:
    """A dropped zip goes to disk (replacing the last one of this tab) and leaves Streamlit's memory."""
    s = st.session_state
    files = uploads.uploader("Drop a zip of images (any folders inside)", "predict_zip", ["zip"],
                             MAX_ZIP_BYTES // 1000**2)
    if not files:
        return
    upload = files[0]
    path = uploads_dir() / "predict" / s.token / f"batch-{time.time_ns()}.zip"
    try:
        check_zip_size(upload.name, upload.size)
        uploads.copy_to(upload, path)
    except StudioError as exc:
        show_error(exc)
        return
    finally:
        uploads.release("predict_zip", files)
    if s.get("predict_zip"):
        s.predict_zip[1].unlink(missing_ok=True)
    s.predict_zip = (upload.name, path)
    st.rerun()


def _predict(run_id: str, name: str, path, k: int) -> Batch:
    bar, progress = counted_bar(f"Predicting the images in {name}...", f"Predicting the images in {name}")
    batch = predict_batch(
        state.run_store(), run_id, [path], k=k, names={str(path): name}, progress=progress, thumbnails=THUMBNAIL
    )
    bar.empty()
    return batch


def _rows(batch: Batch, name: str) -> list[dict]:
    """One row per image: those the "none of these" rule sets apart first, as one group, then the rest by
    confidence, lowest first. An image set apart has no confidence bar: its softmax can be sure of a class
    whose training images it is far from, and that number would contradict the verdict."""
    rows = [{"image": png_data_uri(r["thumbnail"]), "file": r["image"].removeprefix(f"{name}:"),
             "predicted": f"{UNKNOWN} (nearest class: {r['top'][0]['label']})" if r["unknown"]
             else r["top"][0]["label"],
             "confidence": None if r["unknown"] else 100 * r["top"][0]["probability"],
             "top k": "; ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top"])} for r in batch.predicted]
    return sorted(rows, key=lambda row: (row["confidence"] is not None, row["confidence"] or 0.0))


def section(run, k: int) -> None:
    s = st.session_state
    _receive()
    if not s.get("predict_zip"):
        st.info("Upload a zip of images to classify all of them with this run's model. Images can sit in any "
                "folders inside; anything else is skipped and listed.")
        return
    name, path = s.predict_zip
    key = (run.id, str(path), k)
    if s.get("predict_batch_key") != key:
        try:
            s.predict_batch = _predict(run.id, name, path, k)
        except StudioError as exc:
            show_error(exc)
            return
        s.predict_batch_key = key
    batch: Batch = s.predict_batch
    _show(batch, name, run.id)


def _show(batch: Batch, name: str, run_id: str) -> None:
    predicted = batch.predicted
    cols = st.columns(4)
    cols[0].metric("Images predicted", f"{len(predicted):,}")
    cols[1].metric("None of the classes", sum(1 for r in predicted if r["unknown"]))
    cols[2].metric("Unreadable or skipped", len(batch.results) - len(predicted) + len(batch.skipped))
    cols[3].metric("Images per second", f"{len(batch.results) / max(batch.seconds, 1e-9):.0f}")
    left, right = st.columns([1, 2])
    chart(class_counts(batch.counts(), f"{name}: predicted class of the {len(predicted)} images", apart=UNKNOWN),
          left, key="batch_counts")
    rows = _rows(batch, name)
    with right:
        st.caption(f"Images that fit none of the classes first (\"{UNKNOWN}\": far from every class's training "
                   f"images), then the rest, lowest confidence first. Click a column header to sort by it.")
        st.dataframe(rows, hide_index=True, height=min(40 + ROW_HEIGHT * len(rows), 40 + ROW_HEIGHT * 15),
                     row_height=ROW_HEIGHT, column_config={
                         "image": st.column_config.ImageColumn("image", width="small"),
                         "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0,
                                                                       max_value=100.0, format="%.1f%%")})
    problems = [r for r in batch.as_results() if "error" in r]
    if problems:
        with st.expander(f"{len(problems)} file(s) not predicted"):
            st.dataframe([{"file": r["image"].removeprefix(f"{name}:"), "why": r["error"]} for r in problems],
                         hide_index=True)
    st.download_button("All predictions (CSV)", predictions_csv(batch.as_results()),
                       f"predictions-{run_id}-{name.removesuffix('.zip')}.csv", "text/csv", key="batch_csv")
