"""Predict: a trained run on new images (or a zip of them), with probabilities, saliency and a CSV of the results."""

from pathlib import Path

import streamlit as st

from core.data.decode import load_array
from core.data.sources import uploads_dir
from core.errors import StudioError
from core.inference.predict import predict_sources, predictions_csv
from core.present.figures import top_k_bars
from core.present.views import RunViews
from ui import state, uploads
from ui.presenting import chart
from ui.sections import batch_predict
from ui.widgets import pick_run, show_error, show_nearest

st.title("Predict")
run = pick_run("Model (a completed run)")
if run is None:
    st.stop()

PREDICT_KEEP = 50  # images kept per session; older ones are dropped
THUMBNAIL = 224
s = st.session_state
s.setdefault("predict_files", [])
mode = st.radio("Predict", ["Images", "A zip of images"], horizontal=True, label_visibility="collapsed")
k = st.slider("Show the top", 1, 10, 3)
if mode == "A zip of images":
    batch_predict.section(run, k)
    st.stop()
try:
    added = uploads.save_images("Drop one or more images", "predict_upload", uploads_dir() / "predict" / s.token,
                                multiple=True)
except StudioError as exc:
    show_error(exc)
    added = []
if added:
    s.predict_files += [(name, str(path)) for name, path in added]
    for _, old in s.predict_files[:-PREDICT_KEEP]:
        Path(old).unlink(missing_ok=True)
    s.predict_files = s.predict_files[-PREDICT_KEEP:]
    st.rerun()  # the drop zone shows empty again; the images are listed below, read from disk
with st.expander("Or take a photo"):
    photo = st.camera_input("Camera")  # one small JPEG; kept by its widget so the preview stays
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
        results = predict_sources(state.run_store(), run.id, files, k=k)
except StudioError as exc:
    show_error(exc)
    st.stop()

views = RunViews(run) if saliency else None
for (name, data), result in zip(files, results, strict=False):
    left, right = st.columns([1, 3])
    if "error" in result:
        right.error(result["error"])
        continue
    with left:
        array = load_array(data, views.model.size if views else THUMBNAIL, name=name)
        st.image(views.saliency(array).overlay if views else array, caption=name, width=200)
    closest = result["top"][0]["label"]
    if result.get("unknown"):
        right.warning(f"**None of the classes** (closest: {closest}). This image is further from every class than "
                      f"99% of the training images are from their own; the probabilities below are not to be "
                      f"trusted.", icon=":material/help:")
    title = f"{name}: none of these (closest {closest})" if result.get("unknown") else f"{name}: {closest}"
    chart(top_k_bars(result["top"], title), right, key=f"bars_{name}_{id(result)}")
    if result.get("nearest"):
        right.caption("Why: the training images nearest to it in feature space (cosine similarity)")
        show_nearest(right, result["nearest"], RunViews(run))

st.download_button("All predictions (CSV)", predictions_csv(results), f"predictions-{run.id}.csv", "text/csv")
