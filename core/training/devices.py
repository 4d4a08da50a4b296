"""What the studio runs on: TensorFlow version, devices, bundled model readiness."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Environment:
    tensorflow: str
    tf_keras: str
    tensorflow_hub: str
    device: str  # "GPU (n)" or "CPU"
    gpus: tuple[str, ...]
    bundled_model: str  # ready / not prepared / damaged: ...
    hub_export: str
    tflite_copy: str  # the fast frozen forward used by the trainer on CPU: ready / not prepared


def configure_devices() -> tuple[str, ...]:
    """Turn on memory growth on every GPU (so TensorFlow does not grab all of it); return their names. Without
    a GPU driver there is nothing to configure, and TensorFlow is not loaded for it."""
    from core.backbones.tflite_run import gpu_present

    if not gpu_present():
        return ()
    from core.tf import tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # RuntimeError: already initialised in this process, so growth was set before or cannot be now
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    return tuple(gpu.name for gpu in gpus)


def describe() -> Environment:
    """Versions from the installed packages' metadata and devices from the driver, so the Home page that asks
    does not load TensorFlow (seconds) unless there is a GPU to list."""
    from importlib.metadata import version

    from core.backbones.model_store import status

    gpus = configure_devices()
    bundled = status()
    return Environment(
        tensorflow=version("tensorflow"),
        tf_keras=version("tf-keras"),
        tensorflow_hub=version("tensorflow-hub"),
        device=f"GPU ({len(gpus)})" if gpus else "CPU",
        gpus=gpus,
        bundled_model=bundled["keras"],
        hub_export=bundled["hub"],
        tflite_copy=bundled["tflite"],
    )
