"""The Data page's "Which images to label next": a pool of unlabelled images, the picks that would teach the model
most (with its guess and why), a grid to label them, and the labels saved beside the dataset (core.data.additions)."""

from __future__ import annotations

import streamlit as st

from core.data.additions import remove_additions
from core.data.pool import against, label_pool
from core.data.sources import MAX_ZIP_BYTES, load_pool
from core.errors import StudioError
from core.inference.suggest import DEFAULT_PICKS, suggest
from core.model.acquisition import STRATEGIES
from ui import resources, state, uploads
from ui.progress import staged_bar
from ui.widgets import show_error

SKIP, NEW = "skip", "new class..."
COLUMNS = 5
STAGES = {"dataset": (0.0, 0.1, "Checking the labelled images"), "pool": (0.1, 0.3, "Checking the pool's files"),
          "features": (0.3, 0.85, "Embedding the images once (kept for next time)"),
          "guesses": (0.85, 0.9, "The model's guess for each pool image"),
          "ranking": (0.9, 1.0, "Ranking the pool: groups, then the least sure of each")}
STRATEGY_TEXT = {"auto": "auto: typical and diverse while labels are few, then the least sure",
                 "uncertainty": "the least sure, spread out", "diverse": "typical and diverse",
                 "random": "random (the baseline)"}

s = st.session_state


def section(ds, on_saved) -> None:
    st.subheader("Which images to label next")
    st.caption("Point the studio at images you have not labelled (a folder, or a zip, in any layout). It ranks them "
               "by how much labelling each would teach the model, shows its guess, and adds the ones you label "
               "through a record beside the dataset: your files are never moved or changed.")
    _additions_in_effect(ds, on_saved)
    pool_root = _choose_pool()
    if not pool_root:
        return
    left, middle, right = st.columns([1, 2, 1])
    n = left.number_input("Images to suggest", 1, 100, DEFAULT_PICKS, key="w_pool_n")
    strategy = middle.selectbox("How to pick", STRATEGIES, format_func=STRATEGY_TEXT.get, key="w_pool_strategy")
    if right.button("Suggest images to label", type="primary", icon=":material/label:"):
        _suggest(pool_root, int(n), strategy)
    found = s.get("suggestions")
    if found and found["pool"] == pool_root and found["data"] == s.dataset:
        _grid(ds, found, on_saved)


def _choose_pool() -> str | None:
    kind = st.radio("Unlabelled images", ["Folder on this machine", "Upload a zip of images"], horizontal=True,
                    key="w_pool_kind")
    try:
        if kind == "Folder on this machine":
            folder = st.text_input("Folder of unlabelled images", value=s.get("pool_root", ""),
                                   placeholder="/home/me/camera-roll")
            if folder.strip() and folder.strip() != s.get("pool_root"):
                s.pool_root = load_pool(folder.strip()).root
        else:
            files = uploads.uploader("Zip of unlabelled images", "pool_upload", ["zip"], MAX_ZIP_BYTES // 1000**2)
            if files:
                s.pool_root = uploads.unpacked_zip(files, "pool_upload", pool=True).root
    except StudioError as exc:
        show_error(exc)
        return None
    return s.get("pool_root")


def _suggest(pool_root: str, n: int, strategy: str) -> None:
    bar, report = staged_bar(STAGES, "Checking the labelled images...")

    try:
        found = suggest(s.dataset, pool_root, n=n, strategy=strategy, progress=report)
        s.suggestions = {**found.to_json(), "data": s.dataset, "new_class": list(found.new_class_candidates),
                         "set_aside": list(found.duplicates)}
    except StudioError as exc:
        show_error(exc)
    finally:
        bar.empty()


def _grid(ds, found: dict, on_saved) -> None:
    st.markdown(f"**{len(found['picks'])} picks** ({found['strategy']}; guesses by {found['model']}, from "
                f"{found['labelled']:,} labelled images; {found['seconds']:.1f} s). Nothing is chosen for you: "
                f"these are the images the model is least sure of, so check each one and choose its class (the "
                f"model's guess and how sure it is are under the image), skip it, or start a new class.")
    chosen = _choices(ds, found["picks"], "pick")
    if found["new_class"]:
        with st.expander(f"Maybe a class you don't have yet ({len(found['new_class'])} images far from every "
                         f"labelled class; not ranked)"):
            chosen.update(_choices(ds, found["new_class"], "new"))
    if found["set_aside"]:
        with st.expander(f"Set aside as copies ({len(found['set_aside'])})"):
            st.dataframe(found["set_aside"], hide_index=True)
    _save(ds, found, chosen, on_saved)


def sureness(probability: float) -> str:
    """How sure the model is of a guess, in words beside the number."""
    return "sure" if probability >= 0.9 else "fairly sure" if probability >= 0.6 else "unsure"


def _choices(ds, rows: list[dict], key: str) -> dict[str, str]:
    """file -> class for every image the user gave one (none is preselected: confirming a guess is a choice too;
    skip and an empty new class give none)."""
    options = [*ds.classes, SKIP, NEW]
    chosen = {}
    for start in range(0, len(rows), COLUMNS):
        for column, row in zip(st.columns(COLUMNS), rows[start:start + COLUMNS], strict=False):
            with column:
                st.image(resources.thumbnail(row["path"], 128), width=128)
                st.caption(f"**{row['file']}** · model's guess: {row['guess']}, {row['probability']:.0%} "
                           f"({sureness(row['probability'])})" + (f" · {row['reason']}" if row.get("reason") else ""))
                choice = st.selectbox("Class", options, index=None, key=f"label_{key}_{row['file']}",
                                      placeholder=f"choose (guess: {row['guess']})", label_visibility="collapsed")
                if choice == NEW:
                    choice = st.text_input("New class", key=f"new_{key}_{row['file']}", placeholder="class name")
                if choice and choice != SKIP:
                    chosen[row["file"]] = choice.strip()
    return chosen


def _save(ds, found: dict, chosen: dict, on_saved) -> None:
    left, right = st.columns([1, 3])
    if not left.button(f"Save {len(chosen)} label(s)", disabled=not chosen, icon=":material/save:"):
        return
    try:
        done = label_pool(ds, against(load_pool(found["pool"]), ds), chosen)
    except StudioError as exc:
        show_error(exc)
        return
    if done.refused:
        right.error("Nothing was saved: " + "; ".join(f"{f}: {why}" for f, why in done.refused),
                    icon=":material/error:")
        return
    s.pop("suggestions", None)
    s.labels_saved = len(done.added)
    _keep_taking_every_image(ds, done)
    on_saved()
    st.rerun()


def _keep_taking_every_image(ds, done) -> None:
    """A sample that took every image of every class keeps doing so with the new labels: a labelling round
    whose images the next run leaves out would teach nothing."""
    counts = ds.counts()
    if s.fraction is None and s.per_class is not None and counts and s.per_class >= max(counts.values()):
        grown = {c: counts.get(c, 0) + sum(1 for _, label in done.added if label == c)
                 for c in {*counts, *(label for _, label in done.added)}}
        s.per_class = s.w_per_class = max(grown.values())


def _additions_in_effect(ds, on_saved) -> None:
    applied = ds.additions.get("applied", [])
    if s.pop("labels_saved", None):
        st.success(f"Saved. The dataset now has {len(ds):,} images, {len(applied)} of them labelled from a pool. "
                   f"Train again to see what they changed; the Analyze page redraws the data-size forecast with "
                   f"the new count.", icon=":material/check_circle:")
    if applied and s.fraction is None and s.per_class is not None and s.per_class < max(ds.counts().values()):
        st.warning(f"The sample takes {s.per_class} images per class (Sample and split, below), so a run may leave "
                   f"some of the labelled images out. To train on all of them, set the **Images per class** slider "
                   f"under Sample and split to its right end ({max(ds.counts().values())}).",
                   icon=":material/warning:")
    if not applied:
        return
    left, middle, right = st.columns([3, 1, 1])
    left.info(f"{len(applied)} image(s) labelled from a pool are in the dataset, kept in {ds.additions['file']}.",
              icon=":material/playlist_add_check:")
    if middle.button("Train again", type="primary", icon=":material/play_arrow:"):
        _train_again()
    if right.button("Remove every addition", icon=":material/undo:"):
        remove_additions(ds.root)
        on_saved()
        st.rerun()


def _train_again() -> None:
    """A run with the settings of this session's last run (or the current ones), on the sample with the labels."""
    from core.runs import executors

    try:
        last = state.run_store().load(s.run_id, verify=False).config if s.get("run_id") else None
        same = last is not None and last.dataset == s.dataset  # its settings, on the sample the Data page shows
        config = last.with_(per_class=s.per_class, fraction=s.fraction) if same else state.train_config()
        s.run_id = executors.current(state.run_store()).submit(config, owner=s.token)
    except StudioError as exc:
        show_error(exc)
        return
    st.switch_page("app_pages/train.py")
