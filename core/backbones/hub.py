"""Loading TF Hub models for real, offline-aware.

A handle is a local SavedModel folder or a URL. URLs resolve through TFHUB_CACHE_DIR (set by
the project to a folder in the studio home unless already set). A cached model is used
without any network; a cache entry without saved_model.pb is reported as incomplete; an
uncached URL is only fetched when its host answers within a few seconds, so a machine
without network gets a clear message instead of a hang.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from core import paths
from core.errors import BackboneUnavailable

PROBE_TIMEOUT_S = 4.0


def cache_folder(handle: str) -> Path:
    """Where tensorflow_hub caches `handle` (it names the folder by the handle's SHA-1)."""
    return paths.tfhub_cache_dir() / hashlib.sha1(handle.encode("utf-8")).hexdigest()


def _check_saved_model(folder: Path, handle: str) -> None:
    if not (folder / "saved_model.pb").is_file():
        raise BackboneUnavailable(
            f"The cached copy of {handle} at {folder} is incomplete (no saved_model.pb). "
            f"Delete that folder and load the model again with a network connection."
        )


def _host_reachable(url: str) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def resolve(handle: str) -> Path:
    """A local folder holding the SavedModel for `handle`, downloading once if needed."""
    local = Path(handle).expanduser()
    if "://" not in handle:
        if not local.is_dir():
            raise BackboneUnavailable(f"No SavedModel folder at {handle}; give a TF Hub URL or an existing folder.")
        _check_saved_model(local, handle)
        return local
    os.environ.setdefault("TFHUB_CACHE_DIR", str(paths.tfhub_cache_dir()))
    cached = cache_folder(handle)
    if cached.exists():
        _check_saved_model(cached, handle)
        return cached
    if not _host_reachable(handle):
        raise BackboneUnavailable(
            f"{handle} is not cached and its host cannot be reached (no network?). This model needs one "
            f"download: connect once, or download it elsewhere and give its local folder as a custom handle, "
            f"or point TFHUB_CACHE_DIR at a folder that already holds it. Offline, use efficientnet_lite0."
        )
    import tensorflow_hub as hub

    try:
        return Path(hub.resolve(handle))
    except Exception as exc:  # network errors of many kinds surface from urllib / tf.io
        raise BackboneUnavailable(f"Downloading {handle} failed: {exc}") from exc


def keras_layer(handle: str, *, trainable: bool):
    """A hub.KerasLayer over the resolved SavedModel folder."""
    import tensorflow_hub as hub

    from core.tf import tf  # noqa: F401  (TensorFlow loads after the Keras switch)

    return hub.KerasLayer(str(resolve(handle)), trainable=trainable)


def input_size(layer) -> int | None:
    """The square input size a hub layer's SavedModel was traced with, if it has a fixed one."""
    saved = getattr(layer, "_func", None)  # the restored SavedModel; its call function holds the traces
    function = saved.__call__ if saved is not None else None
    for concrete in getattr(function, "concrete_functions", ()):
        args = concrete.structured_input_signature[0]
        shape = getattr(args[0], "shape", None) if args else None
        if shape is not None and len(shape) == 4 and shape[1] and shape[1] == shape[2]:
            return int(shape[1])
    return None
