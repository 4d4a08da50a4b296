"""Concurrent sessions (three AppTest sessions in one server process) each see their own data and
runs; one training at a time, the others queued with their position shown. Uploads are written
to disk and released from Streamlit's memory."""

import io
import zipfile

from streamlit.testing.v1 import AppTest

from core.data.sources import uploads_dir
from core.runs.jobs import queue_lock
from core.runs.store import RunStore
from tests.helpers import PROJECT_DIR, make_color_folders, metrics, open_page, text_of, wait_for
from tests.hostile import base_image, encode


def shapes_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for label in ("circles", "squares"):
            for i in range(6):
                z.writestr(f"shapes/{label}/{i}.png", encode(base_image(hash((label, i)) % 997, (24, 24)), "PNG"))
    return buf.getvalue()


def use_folder(folder) -> AppTest:
    at = open_page("data")
    at.radio[0].set_value("Folder on this machine").run()
    at.text_input[0].set_value(str(folder)).run()
    at.button[0].click().run()
    assert not at.exception
    return at


def test_three_sessions_keep_their_data_and_runs_apart(own_runs, tmp_path):
    colours = make_color_folders(tmp_path / "colours", per_class=6)
    pairs = make_color_folders(tmp_path / "pairs", per_class=5)
    (pairs / "blue").rename(tmp_path / "blue-elsewhere")  # two classes only
    a, b = use_folder(colours), use_folder(pairs)
    c = open_page("data")
    c.radio[0].set_value("Upload a zip of class folders").run()
    c.file_uploader[0].upload("shapes.zip", shapes_zip(), "application/zip").run()
    assert not c.exception, [e.value for e in c.exception]
    assert metrics(a)["Classes"] == "3" and metrics(b)["Classes"] == "2" and metrics(c)["Classes"] == "2"
    assert "Validation report: shapes.zip" in [h.value for h in c.subheader]
    assert c.session_state["zip_upload__n"] == 1  # the uploader was reset: the zip is no longer held
    assert not list(own_runs.parent.glob("**/.incoming-*"))
    tokens = {at.session_state.token for at in (a, b, c)}
    assert len(tokens) == 3

    with queue_lock(RunStore.default()):  # hold the queue so all three are waiting at once
        for at in (a, b, c):
            at.switch_page("app_pages/train.py").run()
            at.number_input[0].set_value(1)  # one epoch
            at.button[0].click().run()
            assert not at.exception, [e.value for e in at.exception]
        ids = [at.session_state.run_id for at in (a, b, c)]
        assert len(set(ids)) == 3
        for at, run_id in zip((a, b, c), ids, strict=False):
            at.run()
            run = RunStore.default().load(run_id)
            assert run.config.dataset == at.session_state.dataset and run.status["owner"] == at.session_state.token
            assert f"Run {run_id}" in [h.value for h in at.subheader]  # each page watches its own run
            position = ids.index(run_id) + 1  # nothing trains yet: the first is about to start
            assert (f"Queued: position {position}" if position > 1 else "Starting a training worker") in text_of(at)

    running_at_once = []

    def all_done():
        states = [RunStore.default().load(i, verify=False).state for i in ids]
        running_at_once.append(states.count("running"))
        return all(s == "completed" for s in states)

    assert wait_for(all_done, timeout=600, poll=0.2)
    assert max(running_at_once) == 1  # one training at a time

    for at, run_id in zip((a, b, c), ids, strict=False):
        at.switch_page("app_pages/results.py").run()
        assert not at.exception
        assert f"Run {run_id}" in [h.value for h in at.subheader]
        table = at.dataframe[0].value
        assert list(table.loc[table["yours"] == "yes", "run"]) == [run_id]
        assert len(table) == 3  # everyone's runs stay listed for comparison


def test_release_drops_uploads_from_streamlit_memory(tmp_path):
    def script():
        from pathlib import Path

        import streamlit as st
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        from ui import uploads

        files = uploads.uploader("Images", "demo", ["png"], 5, multiple=True)
        manager, session = get_script_run_ctx().uploaded_file_mgr, get_script_run_ctx().session_id
        held = lambda: len(manager.get_files(session, [f.file_id for f in files]))  # noqa: E731
        if files:
            st.session_state.held_before = held()
            for f in files:
                uploads.copy_to(f, Path(st.session_state.dest) / f.name)
            uploads.release("demo", files)
            st.session_state.held_after = held()

    at = AppTest.from_function(script)
    at.session_state.dest = str(tmp_path)
    at.run()
    png = encode(base_image(), "PNG")
    at.file_uploader[0].upload("a.png", png, "image/png").upload("b.png", png[::-1], "image/png").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state.held_before == 2 and at.session_state.held_after == 0
    assert (tmp_path / "a.png").read_bytes() == png and (tmp_path / "b.png").stat().st_size == len(png)
    assert at.session_state["demo__n"] == 1
    at.run()
    assert at.file_uploader[0].key == "demo__1" and not at.file_uploader[0].value  # shown empty again


def test_class_by_class_uploads_refuse_oversized_images_and_keep_the_rest(own_runs):
    at = open_page("data")
    at.radio[0].set_value("Upload images class by class").run()
    at.text_input[0].set_value("cats")
    big = b"\x89PNG" + bytes(26 * 1024**2)
    at.file_uploader[0].upload("huge.png", big, "image/png")
    at.button[0].click().run()
    assert not at.exception
    assert "huge.png: 26.0 MB is over the 25 MB limit for one image" in text_of(at)
    assert at.session_state["class_upload__n"] == 1  # released even when refused
    assert not (uploads_dir() / f"session-{at.session_state.token}" / "cats").exists()  # nothing half-saved
    at.run()  # the next run shows the emptied uploader
    for label, seeds in (("cats", (1, 2, 3)), ("dogs", (4, 5, 6))):
        at.text_input[0].set_value(label)
        for seed in seeds:
            at.file_uploader[0].upload(f"{seed}.png", encode(base_image(seed), "PNG"), "image/png")
        at.button[0].click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert metrics(at)["Classes"] == "2" and metrics(at)["Usable images"] == "6"
    assert at.session_state.dataset_label == "your uploads" and at.session_state["class_upload__n"] == 3


def test_server_upload_limit_matches_the_zip_limit_and_xsrf_is_on():
    import tomllib

    from core.data.sources import MAX_ZIP_BYTES
    server = tomllib.loads((PROJECT_DIR / ".streamlit" / "config.toml").read_text())["server"]
    assert server["maxUploadSize"] == MAX_ZIP_BYTES // 1000**2 and server["enableXsrfProtection"] is True
