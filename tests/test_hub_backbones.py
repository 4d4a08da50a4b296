"""TF Hub and keras.applications backbones, offline: local stand-ins saved by the tests."""

import numpy as np
import pytest

from core.backbones import available_offline, bundled, custom_name, get_spec, load_backbone
from core.backbones.keras_apps import BLOCK_ENDS, base_model, preprocess, split_blocks
from core.backbones.registry import KERAS_ARCHITECTURES
from core.data.sampling import sample, split
from core.data.scan import scan_folder
from core.tf import tf, tf_keras
from core.training.config import TrainConfig
from core.training.keras_parts import TrainableModel
from core.training.trainer import parameter_counts, train


@pytest.fixture(scope="module")
def small_hub_model(tmp_path_factory):
    """A small tf_keras model saved as a TF Hub SavedModel. Its layer names sort differently from the
    order they are used in (block10 runs before block9), so group order must come from first use."""
    inputs = tf_keras.Input((32, 32, 3))
    x = tf_keras.layers.Conv2D(8, 3, strides=2, padding="same", name="stem_conv")(inputs)
    x = tf_keras.layers.BatchNormalization(name="stem_bn")(x)
    x = tf_keras.layers.ReLU()(x)
    for name in ("block10", "block9"):
        x = tf_keras.layers.Conv2D(8, 3, padding="same", name=f"{name}_conv")(x)
        x = tf_keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = tf_keras.layers.ReLU()(x)
    x = tf_keras.layers.Conv2D(16, 1, name="head_conv")(x)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    model = tf_keras.Model(inputs, x)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial BatchNorm statistics, so "unchanged" means something
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma, beta, rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2, var.shape)])
    path = tmp_path_factory.mktemp("hub") / "small_model"
    tf.saved_model.save(model, str(path))
    return path


def test_group_discovery_follows_first_use(small_hub_model):
    backbone = load_backbone(custom_name(str(small_hub_model)))
    assert not backbone.layered and backbone.input_size == 32  # read from the SavedModel's signature
    assert [name for name, _ in backbone.variable_groups()] == ["stem", "block10", "block9", "head"]
    stem = dict(backbone.variable_groups())["stem"]
    assert {v.name.split(":")[0] for v in stem} == {"stem_conv/kernel", "stem_conv/bias", "stem_bn/gamma",
                                                    "stem_bn/beta", "stem_bn/moving_mean", "stem_bn/moving_variance"}
    assert available_offline(get_spec(custom_name(str(small_hub_model))))


def test_bundled_export_groups_are_the_bundled_blocks(lite0, lite0_hub):
    hub_backbone = lite0_hub
    assert [b.name for b in hub_backbone.block_infos] == [b.name for b in lite0.block_infos]
    assert [b.params for b in hub_backbone.block_infos] == [b.params for b in lite0.block_infos]
    for k in (0, 9, 17, 18):
        assert parameter_counts(hub_backbone, k, 5) == parameter_counts(lite0, k, 5)


def test_only_unfrozen_groups_change_and_batchnorm_statistics_stay(small_hub_model):
    backbone = load_backbone(custom_name(str(small_hub_model)))
    groups = backbone.variable_groups()
    frozen = 2  # stem and block10 frozen; block9 and head train
    before = {v.name: v.numpy().copy() for v in backbone.layer.variables}
    inputs = tf_keras.Input((32, 32, 3))
    head = tf_keras.layers.Dense(3, activation="softmax")
    model = TrainableModel(inputs, head(backbone.layer(inputs, training=False)))
    model.compile(tf_keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    unfrozen = [v for _, vs in groups[frozen:] for v in vs if v.trainable]
    model.head, model.body = list(head.trainable_variables), unfrozen
    rng = np.random.default_rng(1)
    model.fit(rng.random((8, 32, 32, 3)).astype("float32"), rng.integers(0, 3, 8), epochs=2, batch_size=4, verbose=0)
    changed = {v.name for v in backbone.layer.variables if not np.array_equal(before[v.name], v.numpy())}
    expected = {v.name for v in unfrozen}
    assert changed == expected and expected
    assert all("moving_" not in name for name in changed)
    trainable, _ = parameter_counts(backbone, frozen, 3)
    assert trainable == sum(int(np.prod(v.shape)) for v in unfrozen) + 16 * 3 + 3


def test_training_fine_tunes_part_of_an_opaque_layer(small_hub_model, color_folder):
    parts = split(sample(scan_folder(color_folder), per_class=6).items, 0.34, 0.0)
    config = TrainConfig(backbone=custom_name(str(small_hub_model)), frozen_blocks=2, epochs=2, batch_size=4)
    result = train(config, parts)
    assert not result.cached and [h["phase"] for h in result.history] == ["head", "fine-tune"]
    saved = {k.split("/", 1)[1].split("/")[0] for k in result.weights if k.startswith("hub/")}
    assert saved == {"block9_conv", "block9_bn", "head_conv"}


@pytest.mark.parametrize("name", sorted(BLOCK_ENDS))
def test_keras_applications_block_boundaries(name):
    size = 299 if name == "InceptionV3" else 224
    model = base_model(name, size, weights=None)
    blocks = split_blocks(name, model, size)
    assert blocks[0].name == "stem" and blocks[-1].name == "head" and len(blocks) >= 5
    assert sum(b.count_params() for b in blocks) == model.count_params()
    assert (len(blocks), model.count_params()) == KERAS_ARCHITECTURES[name]  # what `core models` lists
    x = np.random.default_rng(0).random((1, size, size, 3)).astype("float32")
    expected = model(preprocess(name, tf.constant(x))).numpy()
    y = x
    for block in blocks:
        y = block(y)
    assert np.abs(np.asarray(y) - expected).max() < 1e-4


def test_keras_catalog_entries_map_to_split_rules():
    keras_entries = {get_spec(n).handle for n in ("vgg16", "mobilenet_v2", "resnet50", "efficientnet_b0",
                                                  "inception_v3")}
    assert keras_entries == set(BLOCK_ENDS)


def test_hub_export_path_is_a_valid_custom_handle():
    backbone = load_backbone(custom_name(str(bundled.hub_path())))
    assert backbone.input_size == 224 and backbone.num_blocks == 18
