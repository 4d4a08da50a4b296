"""Home: what the tool does, how to start, what it runs on, the latest runs."""

import streamlit as st

from core.runs.summary import RunSummary
from ui import resources, state

st.title("Transfer Learning Studio")
st.markdown(
    "Take a network pretrained on ImageNet, keep some of its blocks frozen and train the rest on "
    "your own images. Then see **why** it works or fails: curves, confusion matrices, the images it "
    "got wrong, what its layers respond to and which pixels drove each prediction."
)

st.subheader("Start with the demo")
st.markdown(
    "1. **Data**: the handwritten-digits demo is already selected (or upload a zip of class folders).\n"
    "2. **Train**: the defaults freeze the whole bundled EfficientNet-Lite0 and train a new head; "
    "click *Train*, it takes under a minute on a laptop CPU.\n"
    "3. **Results**, **Activations**, **Predict**: study the run and try it on new images."
)
c1, c2 = st.columns(2)
c1.page_link("app_pages/data.py", label="Choose data", icon=":material/photo_library:")
c2.page_link("app_pages/train.py", label="Train with the defaults", icon=":material/model_training:")

env = resources.environment()
st.subheader("Environment")
cols = st.columns(4)
cols[0].metric("TensorFlow", env.tensorflow)
cols[1].metric("Device", env.device)
cols[2].metric("Bundled model", "EfficientNet-Lite0")
cols[3].metric("Model status", env.bundled_model.split(":")[0])
if env.bundled_model != "ready":
    st.warning(f"Bundled model: {env.bundled_model}. It is converted from the installed weights package on "
               f"first use (about 20 seconds), or run `python -m core prepare`.")
elif env.tflite_copy != "ready":
    st.caption("Training runs the frozen blocks through TensorFlow. `python -m core prepare` (part of `make run`) "
               "adds a TensorFlow Lite copy of them that runs faster on a CPU.")
with st.expander("Environment details"):
    st.table({"": ["Keras 2 (tf-keras)", "TensorFlow Hub", "GPUs", "TF Hub export of the bundled model",
                   "TensorFlow Lite copy of the frozen feature model"],
              "what is here": [env.tf_keras, env.tensorflow_hub, ", ".join(env.gpus) or "none",
                               env.hub_export, env.tflite_copy]})

runs = state.run_store().runs()[:5]
if runs:
    st.subheader("Latest runs")
    for run in runs:
        st.markdown(f"- {RunSummary.of(run).label()}")
