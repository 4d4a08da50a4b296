"""Activations: what each layer responds to, the first-layer filters, saliency, before vs after."""

import streamlit as st

from core.backbones.registry import backbone_title
from core.data.decode import load_array
from core.data.sources import uploads_dir
from core.errors import StudioError
from core.explain import insight
from core.present.views import RunViews
from ui import uploads
from ui.widgets import pick_run, show_error

s = st.session_state

st.title("Activations")
st.caption("Look inside the network: which channels fire for an image, what the first filters detect, "
           "which pixels drove the prediction, and what fine-tuning changed.")

run = pick_run()
if run is None:
    st.stop()
try:
    views = RunViews(run)
    model = views.model
except StudioError as exc:
    show_error(exc)
    st.stop()

c1, c2 = st.columns([2, 3])
with c1:
    source = st.radio("Image", ["From the validation set", "Upload"], horizontal=True)
    if source == "Upload":
        try:
            added = uploads.save_images("An image", "activations_upload", uploads_dir() / "activations" / s.token)
            if added:
                s.activations_image = added[-1]
            if not s.get("activations_image"):
                st.stop()
            caption, path = s.activations_image
            array = load_array(path, model.size, name=caption)
        except StudioError as exc:
            show_error(exc)
            st.stop()
    else:
        names = list(views.predictions["val"].names)
        name = st.selectbox("Validation image", names)
        array, caption = views.image(name), name
    probs = model.predict_arrays(array[None])
    top = model.top_k(probs, 3)[0]
    st.image(array, caption=caption, width=224)
    st.markdown("**Prediction:** " + ", then ".join(f"class {t['label']} ({t['probability']:.1%})" for t in top))

backbone = model.backbone
with c2:
    st.markdown("**Saliency: which pixels drove the prediction**")
    methods = ["gradcam", "smoothgrad"] if backbone.layered else ["smoothgrad"]
    method = st.radio("Method", methods, horizontal=True,
                      format_func={"gradcam": "Grad-CAM", "smoothgrad": "SmoothGrad (input gradients)"}.get)
    class_names = list(model.classes)
    target = st.selectbox("For class", ["predicted"] + class_names)
    index = None if target == "predicted" else class_names.index(target)
    with st.spinner("Computing saliency..."):
        looked = views.saliency(array, method, class_index=index)
    st.image(looked.overlay, caption=f"{method} for '{looked.class_name}' (yellow = most important)", width=300)

if not backbone.layered:
    st.info("This backbone is an opaque TF Hub layer: its inner layers cannot be read, so only saliency "
            "and the first-layer filters are shown.")
else:
    st.subheader("Feature maps")
    inner = st.toggle("Show layers inside blocks too", False)
    layers = insight.activation_layers(backbone, inner=inner)
    labels = [ref.label for ref in layers]
    chosen = st.selectbox("Layer (input side first)", range(len(layers)), index=len(layers) // 2,
                          format_func=lambda i: labels[i])
    n = st.slider("Channels to show (most active first)", 4, 32, 16, 4)
    ref = layers[chosen]
    with st.spinner(f"Reading {ref.label}'s feature maps..."):
        shown = views.activation_views(array, ref.name, n)
    left, right = st.columns([3, 1])
    left.image(shown.tiles, caption=f"{ref.label}: the {len(shown.channels)} channels with the highest mean activation")
    right.image(shown.mean_overlay, caption="Mean over all channels, over the image", width=224)

    st.subheader("Pretrained vs this run")
    if run.config.frozen_blocks < 0:
        st.caption("Every block stayed frozen in this run, so its feature maps equal the pretrained ones; "
                   "train with fewer frozen blocks to see what fine-tuning changes.")
    with st.spinner("Loading the pretrained backbone to compare its feature maps with this run's..."):
        before, after = views.before_after(array, ref.name, n=8)
    b, a = st.columns(2)
    b.image(before, caption=f"Pretrained {backbone_title(run.config.backbone)}: {ref.label}")
    a.image(after, caption=f"This run: {ref.label}")

st.subheader("First-layer filters")
try:
    with st.spinner("Reading the first convolution's filters..."):
        filters = views.filters()
    st.image(filters, caption="Each tile is one 3x3 RGB filter of the first convolution, scaled to its "
                                      "own range: edge, colour and texture detectors.")
except ValueError as exc:
    st.info(str(exc))
