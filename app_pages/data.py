"""Data: choose a source, see the validation report, choose the sample, split and augmentation."""

import time

import streamlit as st

from core.data.augment import AugmentConfig, previews
from core.data.sampling import sample
from core.data.sources import (
    DEMOS,
    MAX_IMAGE_BYTES,
    MAX_ZIP_BYTES,
    add_labelled_files,
)
from core.errors import StudioError
from core.present.figures import class_counts
from ui import resources, state, uploads
from ui.presenting import chart, editing, hidden_note
from ui.sections import health as health_section
from ui.sections import labelling
from ui.widgets import show_error

s = st.session_state
st.title("Data")
st.caption("Pick images, check what was found, choose how many to train on and how to split them.")

SOURCES = ["Demo dataset", "Upload a zip of class folders", "Folder on this machine", "Upload images class by class"]


def use(spec: str, label: str, edited: bool = False) -> None:
    s.dataset, s.dataset_label = spec, label
    if edited:  # the folder changed on disk: scan it again rather than reuse the cached scan
        s.dataset_stamp = time.time()


if editing():
    source = st.radio("Source", SOURCES, horizontal=True, key="data_source")
    try:
        if source == SOURCES[0]:
            names = list(DEMOS)
            current = s.dataset if s.dataset in DEMOS else names[0]
            demo = st.selectbox("Demo dataset", names, index=names.index(current),
                                format_func=lambda n: f"{n}: {DEMOS[n].description} ({DEMOS[n].images:,} images)")
            if demo != s.dataset:
                use(demo, f"{demo} (demo)")
        elif source == SOURCES[1]:
            files = uploads.uploader("Zip with one folder per class (nested folders allowed)", "zip_upload", ["zip"],
                                     MAX_ZIP_BYTES // 1000**2)
            if files:
                name = files[0].name
                ds = uploads.unpacked_zip(files, "zip_upload")
                use(ds.root, name)
                st.rerun()  # shows the emptied uploader; the zip now lives on disk only
        elif source == SOURCES[2]:
            folder = st.text_input("Folder with one sub-folder per class", placeholder="/home/me/photos/pets")
            if st.button("Use this folder", disabled=not folder):
                resources.dataset(folder.strip())  # validates before switching
                use(folder.strip(), folder.strip())
        else:
            with st.form("class_upload"):
                label = st.text_input("Class name", placeholder="cat")
                files = uploads.uploader("Images of this class", "class_upload", uploads.IMAGE_TYPES,
                                         MAX_IMAGE_BYTES // 1024**2, multiple=True)
                added = st.form_submit_button("Add images to this class")
            if added and label and files:
                try:
                    ds = add_labelled_files(f"session-{s.token}", label, [(f.name, f) for f in files])
                finally:
                    uploads.release("class_upload", files)
                use(ds.root, "your uploads", edited=True)
                st.rerun()
            elif added:
                st.warning("Give a class name and at least one image.", icon=":material/warning:")
    except StudioError as exc:
        show_error(exc)
else:
    hidden_note("the controls that change the data, the sample, the split and the augmentation")

try:
    ds = resources.dataset(s.dataset, s.get("dataset_stamp", 0.0))
except StudioError as exc:
    show_error(exc)
    st.stop()

st.subheader(f"Validation report: {s.dataset_label}")
counts = ds.counts()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Classes", len(ds.classes))
c2.metric("Usable images", f"{len(ds):,}")
c3.metric("Skipped files", len(ds.skipped))
c4.metric("Smallest class", f"{min(counts.values()) if counts else 0}")
for warning in ds.warnings:
    st.warning(warning, icon=":material/warning:")
for note in ds.notes:
    st.info(note, icon=":material/photo_size_select_large:")
left, right = st.columns([3, 2])
chart(class_counts(counts), left)
with right:
    if ds.skipped:
        st.markdown("**Skipped files and why**")
        st.dataframe([{"file": x.name, "reason": x.reason, "detail": x.detail} for x in ds.skipped],
                     hide_index=True, height=280)
    else:
        st.success("Every file was a usable image; no exact copies (the Health check below also looks for near "
                   "duplicates).", icon=":material/check_circle:")

health_section.section(ds, s.backbone, lambda: use(s.dataset, s.dataset_label, edited=True))
if editing():
    labelling.section(ds, lambda: use(s.dataset, s.dataset_label, edited=True))

st.subheader("Sample and split")
if editing():
    c1, c2 = st.columns(2)
    with c1:
        mode = st.radio("Sample by", ["Images per class", "Share of the dataset"], horizontal=True,
                        key=state.bind("w_sample_mode", "Images per class" if s.fraction is None else
                                       "Share of the dataset"))
        biggest = max(2, max(counts.values()) if counts else 2)
        if mode == "Images per class":
            state.bind("w_per_class", min(s.per_class or 20, biggest))
            s.w_per_class = min(s.w_per_class, biggest)
            s.per_class, s.fraction = st.slider("Images per class", 2, biggest, key="w_per_class"), None
        else:
            state.bind("w_percent", int(round((s.fraction or 0.25) * 100)))
            percent = st.slider("Share of every class (%)", 1, 100, key="w_percent")
            s.fraction, s.per_class = percent / 100, None
    with c2:
        s.val_fraction = st.slider("Validation share", 0.05, 0.5, step=0.05, key=state.bind("w_val", s.val_fraction))
        s.test_fraction = st.slider("Test share", 0.0, 0.4, step=0.05, key=state.bind("w_test", s.test_fraction))
chosen = sample(ds, s.per_class, s.fraction, seed=0)
n = len(chosen.items)
st.markdown(f"**{chosen.describe()}**: about {round(n * (1 - s.val_fraction - s.test_fraction))} train, "
            f"{round(n * s.val_fraction)} validation, {round(n * s.test_fraction)} test images.")
st.caption("Stratified by class, seeded; exact and near duplicates never on both sides.")

st.subheader("Examples")
# A large set's counts are above at once; its pictures wait for a click (each is a file to open).
if len(ds) <= resources.EXAMPLES_AT_ONCE or st.toggle(f"Show example images (6 a class, from {len(ds):,})", False):
    by_class: dict[str, list] = {}
    for item in ds.items:
        if len(by_class.setdefault(item.label, [])) < 6:
            by_class[item.label].append(item)
    columns = st.columns(2)
    for i, (label, items) in enumerate(list(by_class.items())[:12]):
        with columns[i % 2]:
            st.markdown(f"**{label}** ({counts[label]:,} images)")
            st.image([resources.thumbnail(x.path, 64) for x in items], width=64)
    if len(by_class) > 12:
        st.caption(f"Showing 12 of {len(by_class)} classes.")

st.subheader("Augmentation")
aug = s.augment
if not editing():
    st.markdown(f"**On**: {aug.words()}" if aug.enabled else "**Off**")
elif st.toggle("Augment training images (random changes each epoch)", value=aug.enabled):
    base = aug if aug.enabled else AugmentConfig.standard()
    c1, c2, c3, c4, c5 = st.columns(5)
    aug = AugmentConfig(flip=c1.checkbox("Horizontal flip", base.flip),
                        rotation=c2.slider("Rotation (turns)", 0.0, 0.25, base.rotation, 0.01),
                        zoom=c3.slider("Zoom", 0.0, 0.5, base.zoom, 0.05),
                        translation=c4.slider("Shift", 0.0, 0.5, base.translation, 0.05),
                        contrast=c5.slider("Contrast", 0.0, 0.5, base.contrast, 0.05))
    s.augment = aug
    example = ds.items[0]
    with st.spinner("Drawing augmented previews..."):
        shots = previews(resources.thumbnail(example.path, 160), aug, n=6, seed=int(time.time()) % 1000)
    st.image(shots, caption=[f"{example.label}, variant {i + 1}" for i in range(6)], width=120)
    st.caption("With augmentation the frozen blocks run again on every new variant, every epoch: training "
               "takes longer than on cached features.")
else:
    s.augment = AugmentConfig()

st.page_link("app_pages/train.py", label="Next: choose the model and train", icon=":material/arrow_forward:")
