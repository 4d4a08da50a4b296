import shutil
import time

import numpy as np
import pytest
from PIL import Image

from core.backbones import available_offline, bundled, get_spec, hub, list_specs, lite0_shape, load_backbone
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
    """The Train page draws the bundled backbone from lite0_shape's arithmetic, never building it: the names,
    parameters (all and trainable) and output shapes must be the Keras blocks' own, at an odd size too."""
    assert lite0_shape.block_infos(224) == tuple(lite0.block_infos)
    odd = load_backbone("efficientnet_lite0_random", 161)
    assert lite0_shape.block_infos(161) == tuple(odd.block_infos)
    assert lite0_shape.summary("x", 161).params == odd.feature_model.count_params()


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
    assert spec.input_size in (224, 299)
    if spec.source == "tfhub":
        assert spec.handle.startswith("https://tfhub.dev/") and spec.needs_download
    if spec.source in ("bundled", "bundled_hub", "random"):
        assert not spec.needs_download and available_offline(spec)


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
