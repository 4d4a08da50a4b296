"""Backbones: registry of specs and loading any of them into a common Backbone interface."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from core.backbones import lite_shape
from core.backbones.registry import (
    DEFAULT_BACKBONE,
    KERAS_ARCHITECTURES,
    KERAS_WEIGHT_FILES,
    BackboneSpec,
    Source,
    custom_name,
    get_spec,
    list_specs,
)
from core.backbones.summary import BackboneSummary

if TYPE_CHECKING:
    from core.backbones.base import Backbone

__all__ = [
    "DEFAULT_BACKBONE",
    "LOADERS",
    "BackboneSpec",
    "Source",
    "architecture_summary",
    "available_offline",
    "custom_name",
    "describe",
    "get_spec",
    "list_specs",
    "load_backbone",
    "pretrained_backbone",
]


def load_backbone(name: str, input_size: int | None = None) -> Backbone:
    """Load a backbone by registry name, with the loader its source names in LOADERS. input_size overrides the
    spec's (layered models only)."""
    spec = get_spec(name)
    return LOADERS[spec.source](spec, input_size)


def _bundled(spec: BackboneSpec, input_size: int | None) -> Backbone:
    from core.backbones import bundled
    from core.backbones.base import Backbone

    size = input_size or spec.input_size
    models = bundled.load(spec.name, size)
    return Backbone(spec, size, blocks=models.blocks, imagenet_top=models.top)


def _random(spec: BackboneSpec, input_size: int | None) -> Backbone:
    from core.backbones import bundled
    from core.backbones.base import Backbone

    size = input_size or spec.input_size
    return Backbone(spec, size, blocks=_quick_batchnorm(bundled.build(spec.name, size).blocks))


def _bundled_hub(spec: BackboneSpec, input_size: int | None) -> Backbone:
    from core.backbones import bundled, hub
    from core.backbones.base import Backbone

    return Backbone(spec, spec.input_size, layer=hub.keras_layer(str(bundled.hub_path()), trainable=True))


def _tfhub(spec: BackboneSpec, input_size: int | None) -> Backbone:
    from core.backbones import hub
    from core.backbones.base import Backbone

    return Backbone(spec, spec.input_size, layer=hub.keras_layer(spec.handle, trainable=True))


def _keras(spec: BackboneSpec, input_size: int | None) -> Backbone:
    from core.backbones import keras_apps
    from core.backbones.base import Backbone

    model = keras_apps.base_model(spec.handle, spec.input_size)
    return Backbone(spec, spec.input_size, blocks=keras_apps.split_blocks(spec.handle, model, spec.input_size))


def _custom(spec: BackboneSpec, input_size: int | None) -> Backbone:
    """A SavedModel folder, at the size asked for, else its own traced input size, else the spec's."""
    from core.backbones import hub
    from core.backbones.base import Backbone

    layer = hub.keras_layer(spec.handle, trainable=True)
    return Backbone(spec, input_size or hub.input_size(layer) or spec.input_size, layer=layer)


# One loader per source: (spec, input size or None for the spec's) -> Backbone; only layered and custom
# backbones take another size. Adding a source is an entry here and one in Source.
LOADERS: dict[Source, Callable[[BackboneSpec, int | None], Backbone]] = {
    Source.BUNDLED: _bundled, Source.RANDOM: _random, Source.BUNDLED_HUB: _bundled_hub, Source.TFHUB: _tfhub,
    Source.KERAS: _keras, Source.CUSTOM: _custom}


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
        return spec.source != Source.CUSTOM or Path(spec.handle).expanduser().is_dir()
    if spec.source == Source.TFHUB:
        return (hub.cache_folder(spec.handle) / "saved_model.pb").is_file()
    if spec.source == Source.KERAS:
        return (paths.keras_cache_dir() / "models" / KERAS_WEIGHT_FILES[spec.handle]).is_file()
    return False


def architecture_summary(spec: BackboneSpec) -> tuple[int, int] | None:
    """(blocks, parameters) without any download, or None where only the download would tell."""
    if spec.arch:  # the bundled family, known without TensorFlow
        summary = lite_shape.summary(spec.name, lite_shape.ARCHS[spec.arch])
        return summary.num_blocks, summary.params
    if spec.source == Source.KERAS:
        return KERAS_ARCHITECTURES[spec.handle]
    return None


def describe(name: str) -> BackboneSummary:
    """A backbone's blocks and parameters as the Train page shows them: the bundled family's from its numbers
    (no TensorFlow), any other by loading it."""
    spec = get_spec(name)
    if spec.source in (Source.BUNDLED, Source.RANDOM):
        return lite_shape.summary(name, lite_shape.ARCHS[spec.arch], spec.input_size)
    return load_backbone(name).summary()


@lru_cache(maxsize=2)
def pretrained_backbone(name: str, input_size: int | None = None):
    """A shared, read-only copy for views (activations, before/after). Never train it: training
    and run models load their own copy with load_backbone, because they change weights."""
    return load_backbone(name, input_size)
