"""Backbones: registry of specs and loading any of them into a common Backbone interface."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from core.backbones import lite_shape
from core.backbones.registry import (
    DEFAULT_BACKBONE,
    KERAS_ARCHITECTURES,
    KERAS_WEIGHT_FILES,
    BackboneSpec,
    custom_name,
    get_spec,
    list_specs,
)
from core.backbones.summary import BackboneSummary

__all__ = ["DEFAULT_BACKBONE", "BackboneSpec", "architecture_summary", "available_offline", "custom_name", "describe",
           "get_spec", "list_specs", "load_backbone", "pretrained_backbone"]


def load_backbone(name: str, input_size: int | None = None):
    """Load a backbone by registry name. input_size overrides the spec's (layered models only)."""
    from core.backbones import bundled, hub, keras_apps
    from core.backbones.base import Backbone

    spec = get_spec(name)
    size = input_size or spec.input_size
    if spec.source == "bundled":
        models = bundled.load(name, size)
        return Backbone(spec, size, blocks=models.blocks, imagenet_top=models.top)
    if spec.source == "random":
        return Backbone(spec, size, blocks=_quick_batchnorm(bundled.build(name, size).blocks))
    if spec.source == "bundled_hub":
        return Backbone(spec, spec.input_size, layer=hub.keras_layer(str(bundled.hub_path()), trainable=True))
    if spec.source == "tfhub":
        return Backbone(spec, spec.input_size, layer=hub.keras_layer(spec.handle, trainable=True))
    if spec.source == "keras":
        model = keras_apps.base_model(spec.handle, spec.input_size)
        return Backbone(spec, spec.input_size, blocks=keras_apps.split_blocks(spec.handle, model, spec.input_size))
    if spec.source == "custom":
        layer = hub.keras_layer(spec.handle, trainable=True)
        return Backbone(spec, input_size or hub.input_size(layer) or spec.input_size, layer=layer)
    raise ValueError(f"unknown source {spec.source!r} for {name}")


def _quick_batchnorm(blocks, momentum: float = 0.9):
    """Random weights train from scratch with BatchNorm in training mode (core.training.trainer); a run is a few
    hundred steps, so the moving statistics that evaluation uses must follow faster than ImageNet's 0.99."""
    for block in blocks:
        for layer in block.layers:
            if hasattr(layer, "moving_mean"):
                layer.momentum = momentum
    return blocks


def available_offline(spec: BackboneSpec) -> bool:
    """True when loading needs no network: bundled, or already in the TF Hub / Keras cache."""
    from core import paths
    from core.backbones import hub

    if not spec.needs_download:
        return spec.source != "custom" or Path(spec.handle).expanduser().is_dir()
    if spec.source == "tfhub":
        return (hub.cache_folder(spec.handle) / "saved_model.pb").is_file()
    if spec.source == "keras":
        return (paths.keras_cache_dir() / "models" / KERAS_WEIGHT_FILES[spec.handle]).is_file()
    return False


def architecture_summary(spec: BackboneSpec) -> tuple[int, int] | None:
    """(blocks, parameters) without any download, or None where only the download would tell."""
    if spec.arch:  # the bundled family, known without TensorFlow
        summary = lite_shape.summary(spec.name, lite_shape.ARCHS[spec.arch])
        return summary.num_blocks, summary.params
    if spec.source == "keras":
        return KERAS_ARCHITECTURES[spec.handle]
    return None


def describe(name: str) -> BackboneSummary:
    """A backbone's blocks and parameters as the Train page shows them: the bundled family's from its numbers
    (no TensorFlow), any other by loading it."""
    spec = get_spec(name)
    if spec.source in ("bundled", "random"):
        return lite_shape.summary(name, lite_shape.ARCHS[spec.arch], spec.input_size)
    return load_backbone(name).summary()


@lru_cache(maxsize=2)
def pretrained_backbone(name: str, input_size: int | None = None):
    """A shared, read-only copy for views (activations, before/after). Never train it: training
    and run models load their own copy with load_backbone, because they change weights."""
    return load_backbone(name, input_size)
