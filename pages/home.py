"""Home: what the tool does and what it runs on."""

import streamlit as st

from core.environment import describe


@st.cache_resource(show_spinner="Checking TensorFlow and the bundled model...")
def environment():
    return describe()


st.title("Transfer Learning Studio")
st.markdown(
    "Take a network pretrained on ImageNet, keep some of its blocks frozen and train the rest on "
    "your own images. Then see **why** it works or fails: curves, confusion matrices, the images it "
    "got wrong, what its layers respond to and which pixels drove each prediction."
)

env = environment()
cols = st.columns(4)
cols[0].metric("TensorFlow", env.tensorflow)
cols[1].metric("Device", env.device)
cols[2].metric("Bundled model", "EfficientNet-Lite0")
cols[3].metric("Model status", env.bundled_model.split(":")[0])
if env.bundled_model != "ready":
    st.warning(f"Bundled model: {env.bundled_model}. It is converted from the installed weights package on "
               f"first use (about 20 seconds), or run `python -m core prepare`.")
with st.expander("Environment details"):
    st.write({"tf_keras": env.tf_keras, "tensorflow_hub": env.tensorflow_hub, "GPUs": list(env.gpus) or "none",
              "TF Hub export of the bundled model": env.hub_export})
