"""Predict: a trained run on new images, with probabilities, saliency and a CSV of the results."""

import csv
import io
import time
from pathlib import Path

import streamlit as st

from core.data.decode import load_array
from core.data.sources import MAX_FILES_PER_ADD, MAX_IMAGE_BYTES, check_upload_sizes, uploads_dir
from core.errors import StudioError
from core.predict import predict_sources
from core.views import RunViews
from core.viz.figures import top_k_bars
from ui import uploads
from ui.widgets import pick_run, show_error

st.title("Predict")
run = pick_run("Model (a completed run)")
if run is None:
    st.stop()

PREDICT_KEEP = 50  # images kept per session; older ones are dropped
s = st.session_state
s.setdefault("predict_files", [])
added = uploads.uploader("Drop one or more images", "predict_upload", uploads.IMAGE_TYPES,
                         MAX_IMAGE_BYTES // 1024**2, multiple=True)
if added:
    folder, saved = uploads_dir() / "predict" / s.token, False
    try:
        check_upload_sizes([(f.name, f.size) for f in added], MAX_IMAGE_BYTES, MAX_FILES_PER_ADD)
        for f in added:
            path = uploads.copy_to(f, folder / f"{time.time_ns()}{Path(f.name).suffix.lower()[:10]}")
            s.predict_files.append((f.name, str(path)))
        for _, old in s.predict_files[:-PREDICT_KEEP]:
            Path(old).unlink(missing_ok=True)
        s.predict_files, saved = s.predict_files[-PREDICT_KEEP:], True
    except StudioError as exc:
        show_error(exc)
    finally:
        uploads.release("predict_upload", added)
    if saved:
        st.rerun()  # the drop zone shows empty again; the images are listed below, read from disk
with st.expander("Or take a photo"):
    photo = st.camera_input("Camera")  # one small JPEG; kept by its widget so the preview stays
k = st.slider("Show the top", 1, 10, 3)
saliency = st.toggle("Show saliency (which pixels mattered)", False)

files = [(name, Path(path).read_bytes()) for name, path in s.predict_files if Path(path).is_file()]
if photo is not None:
    files.append(("camera.jpg", photo.getvalue()))
if not files:
    st.info("Upload images to classify them with this run's model.")
    st.stop()
if s.predict_files:
    st.caption(f"{len(s.predict_files)} uploaded image(s) from this tab, kept on disk (the latest {PREDICT_KEEP}).")
if s.predict_files and st.button("Clear the uploaded images", icon=":material/delete_sweep:"):
    for _, path in s.predict_files:
        Path(path).unlink(missing_ok=True)
    s.predict_files = []
    st.rerun()

try:
    with st.spinner("Predicting..."):
        results = predict_sources(run.id, files, k=k)
except StudioError as exc:
    show_error(exc)
    st.stop()

views = RunViews(run) if saliency else None
for (name, data), result in zip(files, results):
    left, right = st.columns([1, 3])
    if "error" in result:
        right.error(result["error"])
        continue
    with left:
        array = load_array(data, views.model.size if views else 224, name=name)
        st.image(views.saliency(array)[0] if views else array, caption=name, width=200)
    right.plotly_chart(top_k_bars(result["top"], f"{name}: {result['top'][0]['label']}"), width="stretch",
                       key=f"bars_{name}_{id(result)}")

buf = io.StringIO()
writer = csv.writer(buf)
writer.writerow(["image", "rank", "label", "probability"])
for result in results:
    for rank, t in enumerate(result.get("top", []), 1):
        writer.writerow([result["image"], rank, t["label"], f"{t['probability']:.6f}"])
    if "error" in result:
        writer.writerow([result["image"], "", "error", result["error"]])
st.download_button("All predictions (CSV)", buf.getvalue(), f"predictions-{run.id}.csv", "text/csv")
