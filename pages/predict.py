"""Predict: a trained run on new images, with probabilities, saliency and a CSV of the results."""

import csv
import io

import streamlit as st

from core.data.decode import load_array
from core.errors import StudioError
from core.predict import predict_sources
from core.views import RunViews
from core.viz.figures import top_k_bars
from ui.widgets import pick_run, show_error

st.title("Predict")
run = pick_run("Model (a completed run)")
if run is None:
    st.stop()

uploads = st.file_uploader("Drop one or more images", accept_multiple_files=True,
                           type=["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"])
with st.expander("Or take a photo"):
    photo = st.camera_input("Camera")
k = st.slider("Show the top", 1, 10, 3)
saliency = st.toggle("Show saliency (which pixels mattered)", False)

files = [(f.name, f.getvalue()) for f in uploads or []]
if photo is not None:
    files.append(("camera.jpg", photo.getvalue()))
if not files:
    st.info("Upload images to classify them with this run's model.")
    st.stop()

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
