"""Transfer analysis: the block feature store, the depth probe, the data-size curve and its forecast,
the CLI, and a training run that reuses what an analysis stored."""

import json

import numpy as np
import pytest

from core.analysis import analyze, forecast, latest
from core.data.scan import scan_folder
from core.errors import DataError
from core.features import blocks
from core.model import probe
from tests.helpers import cli, make_color_folders


@pytest.fixture
def colors(tmp_path):
    return make_color_folders(tmp_path / "colors", per_class=6)


@pytest.mark.usefixtures("prepared")  # the converted pooled-blocks file, whatever ran before (or alone)
def test_block_vectors_run_once_match_tensorflow_and_a_damaged_entry_is_recomputed(lite0, colors,
                                                                                    empty_feature_store):
    from core.backbones.forward import pooled_blocks_model, run_batches
    from core.data.arrays import item_arrays

    items = scan_folder(colors).items
    first = blocks.block_vectors(items, "efficientnet_lite0", None)
    assert first.engine == "tflite" and first.computed == len(items)
    assert first.layout.blocks[0] == "stem" and first.layout.blocks[-1] == "head" and len(first.layout.blocks) == 18
    model, layout = pooled_blocks_model(lite0)
    assert layout == first.layout
    arrays = item_arrays(items, 224)
    assert np.abs(first.vectors - run_batches(model, arrays)).max() < 1e-3
    assert np.abs(first.block(17) - lite0.feature_model.predict(arrays / 255.0, verbose=0)).max() < 1e-3

    again = blocks.block_vectors(items, "efficientnet_lite0", None)
    assert again.engine == "store" and again.computed == 0 and np.array_equal(again.vectors, first.vectors)
    blocks.CACHE.path(blocks.space("efficientnet_lite0", 224), items[0].sha256).write_bytes(b"damaged")
    mended = blocks.block_vectors(items, "efficientnet_lite0", None)
    assert mended.computed == 1 and np.abs(mended.vectors - first.vectors).max() < 1e-5


def test_a_pack_serves_its_images_and_any_subset_memory_mapped_and_a_damaged_one_is_only_a_miss(tmp_path,
                                                                                                 monkeypatch):
    from core.data.npy_cache import NpyCache
    from core.features import packs

    monkeypatch.setattr(packs, "PACK_FROM", 3)
    cache, shas = NpyCache(tmp_path / "blocks", 10**8), [f"{i:064x}" for i in range(5)]
    vectors = np.random.default_rng(0).random((5, 7), dtype=np.float32)
    packs.write(cache, "space", shas[:2], vectors[:2])  # under PACK_FROM: no pack
    assert packs.find(cache, "space", shas[:2], 7) is None
    packs.write(cache, "space", shas, vectors)
    whole = packs.find(cache, "space", shas, 7)
    assert isinstance(whole, np.memmap) and np.array_equal(whole, vectors)
    assert np.array_equal(packs.find(cache, "space", shas[3::-2], 7), vectors[[3, 1]])
    assert packs.find(cache, "space", [*shas[:2], "f" * 64], 7) is None  # one image it does not hold
    assert packs.find(cache, "space", shas, 8) is None  # another layout's width
    cache.path("space/packs", packs._key(shas)).write_bytes(b"damaged")
    assert packs.find(cache, "space", shas, 7) is None


@pytest.mark.usefixtures("prepared")
def test_stored_vectors_of_a_whole_list_come_back_from_one_pack(colors, empty_feature_store, monkeypatch):
    from core.features import packs

    monkeypatch.setattr(packs, "PACK_FROM", 4)
    items = scan_folder(colors).items
    first = blocks.block_vectors(items, "efficientnet_lite0", None)
    again = blocks.block_vectors(items, "efficientnet_lite0", None)
    assert isinstance(again.vectors, np.memmap) and np.array_equal(again.vectors, first.vectors)
    dim = first.layout.dims[-1]
    final = blocks.stored_final_vectors(items[::2], "efficientnet_lite0", 224, dim)
    assert np.array_equal(final, first.final[::2])


def test_the_features_command_fills_the_store_here_once(colors, empty_feature_store, monkeypatch):
    monkeypatch.delenv("STUDIO_RAY_ADDRESS", raising=False)
    first = cli("features", "--data", str(colors))
    assert first.returncode == 0 and "features 18/18" in first.stdout
    assert json.loads(first.stdout.splitlines()[-1]) | {"seconds": 0} == {
        "images": 18, "computed": 18, "shards": 0, "nodes": [], "seconds": 0, "address": ""}
    assert json.loads(cli("features", "--data", str(colors)).stdout.splitlines()[-1])["computed"] == 0
    items = scan_folder(colors).items
    assert blocks.block_vectors(items, "efficientnet_lite0", None).computed == 0


def test_the_depth_probe_finds_the_block_that_holds_the_planted_signal():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    blocks = [rng.normal(0, 1, (60, 8)) for _ in range(4)]
    blocks[2][:, :3] += np.eye(3)[labels] * 3.0  # only block 2 separates the classes
    scores = probe.depth_scores(lambda i: blocks[i], 4, labels)
    assert int(np.argmax([s.accuracy for s in scores])) == 2
    assert scores[2].accuracy > 0.9 and max(s.accuracy for i, s in enumerate(scores) if i != 2) < 0.6


def test_curve_sizes_leave_held_out_images_and_a_class_of_one_is_refused():
    assert probe.curve_sizes(np.repeat(np.arange(3), 25)) == [1, 2, 5, 10, 20]
    assert probe.curve_sizes(np.repeat(np.arange(2), 3)) == [1, 2]
    assert probe.curve_sizes(np.repeat(np.arange(2), 60)) == [1, 2, 5, 10, 20, 48]
    with pytest.raises(DataError, match=r"smallest class here \('cat'\) has 1"):
        probe.folds_for(np.array([0, 0, 0, 1]), ("dog", "cat"))


def test_the_forecast_recovers_a_planted_learning_curve():
    """Accuracy drawn around 0.95 - 0.6 n^-0.7 at 1..20 per class: the fit forecasts 40 and 80 close to the
    law, inside its interval."""
    rng = np.random.default_rng(1)
    truth = forecast.Fit(a=0.95, b=0.6, c=0.7)
    scores = {n: list(truth(n) + rng.normal(0, 0.01, 5)) for n in (1, 2, 5, 10, 20)}
    fit, predicted = forecast.forecast(scores, [40, 80])
    assert fit is not None and [f.per_class for f in predicted] == [40, 80]
    for f in predicted:
        expected = float(truth(f.per_class))
        assert abs(f.accuracy - expected) < 0.02 and f.low <= expected <= f.high and f.high - f.low < 0.1
    assert forecast.forecast({1: [0.5], 2: [0.6]}, [4]) == (None, [])  # too few sizes for three parameters


def test_analyze_command_prints_progress_then_one_json_line_and_reuses_the_store(colors):
    first = cli("analyze", "--data", str(colors), "--per-class", "6")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    assert any(line.startswith("depth ") for line in lines[:-1])
    result = json.loads(lines[-1])
    assert {"depth", "sizes", "forecast", "seconds"} <= set(result)
    assert len(result["depth"]) == 18 and set(result["depth"][0]) >= {"block", "accuracy", "std"}
    assert result["depth"][0]["block"] == "stem" and result["depth"][-1]["block"] == "head"
    assert [s["per_class"] for s in result["sizes"]] == [1, 2, 5]
    assert [f["per_class"] for f in result["forecast"]] == [12, 24]
    assert all(f["low"] <= f["accuracy"] <= f["high"] for f in result["forecast"])
    assert result["depth"][-1]["accuracy"] > 0.9  # solid colours: ImageNet features separate them
    second = json.loads(cli("analyze", "--data", str(colors), "--per-class", "6").stdout.strip().splitlines()[-1])
    assert second["computed"] == 0 and second["engine"] == "store"
    assert latest(str(colors), "efficientnet_lite0").depth[-1].accuracy == second["depth"][-1]["accuracy"]


def test_an_opaque_hub_layer_gives_its_final_vector_only(lite0_hub, colors):
    result = analyze(str(colors), "efficientnet_lite0_hub", per_class=6)
    assert [p.block for p in result.depth] == ["output"] and not result.layered
    assert result.engine == "tensorflow" and result.depth[0].accuracy > 0.9


def test_a_training_run_on_analysed_images_decodes_and_runs_nothing(colors, empty_feature_store):
    from core.data.sampling import sample, split
    from core.training.config import TrainConfig
    from core.training.trainer import train

    config = TrainConfig(dataset=str(colors), per_class=6, epochs=2, val_fraction=0.34, test_fraction=0.0)
    parts = split(sample(scan_folder(colors), per_class=6).items, 0.34, 0.0, 0)
    fresh = train(config, parts)
    assert fresh.timings["frozen_forward"] != "feature store"
    analyze(str(colors), "efficientnet_lite0", per_class=6)
    reused = train(config, parts)
    assert reused.timings["frozen_forward"] == "feature store" and reused.timings["decoded_images"] == 0
    assert np.abs(reused.predictions["val"].probs - fresh.predictions["val"].probs).max() < 1e-3
