"""Uploads: checked, copied to disk, then dropped from Streamlit's memory.

Streamlit keeps every uploaded file's bytes in the server process for as long as the uploader
holds it, for every session. Each uploader here is keyed by a counter: once its files are on
disk they are removed from Streamlit's upload manager and the counter moves on, so the next
run shows an empty uploader and the bytes can be freed.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import streamlit as st
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.data.sources import (
    MAX_FILES_PER_ADD,
    MAX_IMAGE_BYTES,
    check_upload_sizes,
    check_zip_size,
    import_zip_file,
    uploads_dir,
)

IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"]


def uploader(label: str, key: str, types: list[str], max_mb: int, *, multiple: bool = False, **kwargs) -> list:
    """The files in a resettable uploader (always a list). max_mb is also enforced by the browser."""
    n = st.session_state.setdefault(f"{key}__n", 0)
    files = st.file_uploader(label, type=types, accept_multiple_files=multiple, key=f"{key}__{n}",
                             max_upload_size=max_mb, **kwargs)
    return list(files) if multiple else ([files] if files is not None else [])


def copy_to(upload, path: Path) -> Path:
    """Write one uploaded file to `path` in pieces."""
    path.parent.mkdir(parents=True, exist_ok=True)
    upload.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload, out, 1 << 20)
    return path


def release(key: str, files: list) -> None:
    """Forget these uploads: Streamlit drops their bytes and the uploader shows empty on the next run."""
    ctx = get_script_run_ctx()
    manager = getattr(ctx, "uploaded_file_mgr", None)
    if isinstance(manager, MemoryUploadedFileManager):  # the only manager that can remove one file
        for f in files:
            manager.remove_file(session_id=ctx.session_id, file_id=f.file_id)
    for f in files:
        f.close()
    st.session_state[f"{key}__n"] = st.session_state.get(f"{key}__n", 0) + 1


def unpacked_zip(files: list, key: str, *, pool: bool = False):
    """The uploaded zip copied to disk, released from memory, then unpacked like a zip on this machine: a Dataset
    of class folders, or (pool) an unlabelled Pool."""
    upload = files[0]
    incoming = uploads_dir() / f".incoming-{key}-{st.session_state.token}.zip"
    try:
        check_zip_size(upload.name, upload.size)
        copy_to(upload, incoming)
    finally:
        release(key, files)  # its bytes leave the server's memory either way
    try:
        with st.spinner(f"Unpacking {upload.name} (large photos are downscaled in the studio's copy)..."):
            return import_zip_file(incoming, upload.name, pool=pool)
    finally:
        incoming.unlink(missing_ok=True)


def save_images(label: str, key: str, folder: Path, *, multiple: bool = False) -> list[tuple[str, Path]]:
    """Images dropped into a resettable uploader: checked (size, count), written to `folder` and
    released from Streamlit's memory. Returns (name as uploaded, path on disk) of each new file;
    a DataError names the file that was refused, and nothing of that drop is kept then."""
    added = uploader(label, key, IMAGE_TYPES, MAX_IMAGE_BYTES // 1024**2, multiple=multiple)
    if not added:
        return []
    try:
        check_upload_sizes([(f.name, f.size) for f in added], MAX_IMAGE_BYTES, MAX_FILES_PER_ADD)
        return [(f.name, copy_to(f, folder / f"{time.time_ns()}{Path(f.name).suffix.lower()[:10]}")) for f in added]
    finally:
        release(key, added)
