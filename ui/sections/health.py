"""The Data page's Health section: likely label errors, near duplicates, imbalance and odd images, with
the corrections a user marks ("wrong label, should be X" or "exclude") saved to the overrides file."""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from core.backbones.registry import backbone_title
from core.data.overrides import read_overrides, set_override
from core.errors import StudioError
from core.health import check_health, latest, save, scanned_images
from core.health import estimate as health_estimate
from core.images import png_data_uri
from core.present.tables import score_text
from ui import resources
from ui.presenting import editing, presenting
from ui.progress import staged_bar
from ui.widgets import show_error

KEEP, EXCLUDE, RELABEL = "keep", "exclude", "label: "
SHOWN = 30  # rows per table
STAGES = {"features": (0.0, 0.6, "Feature vectors (once per image; kept for Analyze and training)"),
          "look": (0.6, 0.8, "Thumbnails for near duplicates and odd images"),
          "labels": (0.8, 1.0, "Out-of-fold probabilities: a probe fold by fold, then a k-NN vote")}


def _run_check(ds, backbone: str):
    bar, progress = staged_bar(STAGES, "Reading the images...")
    health = check_health(ds, backbone, progress=progress)
    save(health)
    bar.empty()
    return health


def _current_action(overrides, relpath: str) -> str:
    o = overrides.get(relpath)
    if o is None:
        return KEEP
    return EXCLUDE if o.action == "exclude" else RELABEL + o.label


def _editor(ds, rows: list[dict], extra: dict, key: str, overrides) -> dict:
    """A table of thumbnails with an action column; returns {relpath: chosen action}."""
    options = [KEEP, EXCLUDE] + [RELABEL + c for c in ds.classes]
    paths = {i.relpath: i.path for i in ds.items}
    table = [{"image": png_data_uri(resources.thumbnail(paths[r["file"]], 64)), "file": r["file"],
              **{k: r.get(v) for k, v in extra.items()}, "action": _current_action(overrides, r["file"])}
             for r in rows[:SHOWN] if r["file"] in paths]
    locked = True if presenting() else ["image", "file", *extra]  # presenting: the action column is read-only too
    edited = st.data_editor(table, key=key, hide_index=True, disabled=locked,
                            column_config={"image": st.column_config.ImageColumn("image", width="small"),
                                           "action": st.column_config.SelectboxColumn("action", options=options,
                                                                                      required=True)})
    return {row["file"]: row["action"] for row in edited}


def _save(ds, chosen: dict, overrides) -> int:
    changed = 0
    for relpath, action in chosen.items():
        if action == _current_action(overrides, relpath):
            continue
        if action == KEEP:
            set_override(ds, relpath, None)
        elif action == EXCLUDE:
            set_override(ds, relpath, "exclude")
        else:
            set_override(ds, relpath, "relabel", action[len(RELABEL):])
        changed += 1
    return changed


def section(ds, backbone: str, on_saved) -> None:
    st.subheader("Health: can the accuracy be trusted?")
    health = latest(ds.root, backbone)
    fresh = health is not None and health.scanned == scanned_images(ds) and set(ds.classes) <= set(health.classes)
    label = "Check again" if fresh else "Check the dataset's health"
    if editing() and st.button(label, icon=":material/health_and_safety:", type="secondary" if fresh else "primary"):
        try:
            health = _run_check(ds, backbone)
            fresh = True
        except StudioError as exc:
            show_error(exc)
    if not fresh:
        st.caption("Looks for likely label errors (cleanlab on out-of-fold probabilities), near-duplicate copies "
                   "(which would inflate accuracy across the split), class imbalance and odd images. For these "
                   f"{len(ds):,} images the first time: {health_estimate(len(ds), first_time=True).text()}; the "
                   "feature vectors are kept for Analyze and training, so a check again takes "
                   f"{health_estimate(len(ds), first_time=False).text()}.")
        return
    overrides = read_overrides(ds.root)
    c = st.columns(4)
    c[0].metric("Likely label errors", len(health.label_issues))
    c[1].metric("Near-duplicate groups", len(health.near_duplicates))
    c[2].metric("Largest / smallest class", f"{health.imbalance['ratio']:.1f}x")
    c[3].metric("Odd images", len(health.odd_images))
    st.caption(f"Checked {health.images:,} images in {health.seconds:.1f} s with {backbone_title(backbone)}. "
               f"{health.label_check} {health.duplicate_check}")
    if health.corrections != len(ds.overrides.get("applied", [])):
        st.info("Your corrections changed the dataset since this check: the tables show the labels as they were. "
                "**Check again** to rank the corrected dataset.", icon=":material/update:")
    (st.warning if health.imbalance["warning"] else st.caption)(health.imbalance["text"])
    chosen = {}
    if health.label_issues:
        st.markdown("**Likely label errors**, most likely first: the folder's class, and the class the probe "
                    "believes." + (" Choose an action for any you agree with." if editing() else ""))
        issues = [{**asdict(r), "score": score_text(r.score)} for r in health.label_issues]
        chosen.update(_editor(ds, issues, {"given": "given", "suggested": "suggested", "label quality": "score"},
                              "health_labels", overrides))
    if health.near_duplicates:
        st.markdown("**Near-duplicate groups** (each is kept on one side of every split; exclude copies you do not "
                    "want counted twice)")
        rows = [{"file": f, "group": n + 1} for n, g in enumerate(health.near_duplicates[:10]) for f in g]
        chosen.update(_editor(ds, rows, {"group": "group"}, "health_dups", overrides))
    if health.odd_images:
        st.markdown("**Odd images**")
        chosen.update(_editor(ds, [asdict(x) for x in health.odd_images], {"reason": "reason"}, "health_odd",
                              overrides))
    if editing():
        _corrections(ds, chosen, overrides, on_saved)


def _corrections(ds, chosen: dict, overrides, on_saved) -> None:
    pending = sum(1 for f, a in chosen.items() if a != _current_action(overrides, f))
    left, right = st.columns([1, 3])
    if left.button(f"Save {pending} correction(s)", disabled=not pending, icon=":material/save:"):
        try:
            _save(ds, chosen, overrides)
        except StudioError as exc:
            show_error(exc)
            return
        on_saved()
        st.rerun()
    applied = ds.overrides.get("applied", [])
    if applied:
        right.info(f"{len(applied)} correction(s) in effect, kept in {ds.overrides['file']} (your images are "
                   f"untouched). The next run uses them and records them; Results compares it with the run before.",
                   icon=":material/edit_note:")
        if right.button("Remove every correction", icon=":material/undo:"):
            for a in applied + ds.overrides.get("stale", []):
                set_override(ds, a["file"], None)
            on_saved()
            st.rerun()
