"""Training engine: cut, caching, phases, heads, reproducibility, failure modes, the run store."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from core.backbones.efficientnet_lite import chain
from core.backbones.forward import run_batches
from core.data.arrays import item_arrays
from core.data.augment import AugmentConfig
from core.data.sampling import sample, split
from core.data.scan import scan_folder
from core.errors import RunError, TrainingError
from core.inference.predict import predict_sources, run_model
from core.runs import jobs
from core.runs.store import RunStore
from core.training import trainer
from core.training.config import TrainConfig
from core.training.plan import plan_phases
from core.training.trainer import parameter_counts, train
from tests.helpers import (
    PROJECT_DIR,
    make_color_folders,
    open_page,
    run_cli_process,
    slow_config,
    text_of,
    train_in_process,
    wait_for,
)


@pytest.fixture(autouse=True)
def no_stored_vectors(empty_feature_store):
    """These tests are about the trainer's own engines: vectors an analysis in another test stored for the
    same images would replace them (tests/test_analysis.py covers that path)."""


@pytest.fixture(scope="module")
def small_split(color_folder):
    ds = scan_folder(color_folder)
    return split(sample(ds, per_class=8, seed=0).items, 0.25, 0.0, seed=0)


@pytest.mark.parametrize("k", [0, 1, 9, 17, 18])
def test_cut_equivalence(lite0, k):
    images = np.random.default_rng(k).random((2, 224, 224, 3), dtype=np.float32)
    whole = lite0.feature_model(images).numpy()
    shape = (224, 224, 3)
    front = chain(lite0.blocks[:k], shape, "front")(images) if k else images
    back = chain(lite0.blocks[k:], tuple(front.shape[1:]), "back")(front) if k < 18 else front
    assert np.abs(np.asarray(back) - whole).max() < 1e-4


def test_trainable_parameter_counts_per_k(lite0):
    counts = [parameter_counts(lite0, k, 10) for k in range(19)]
    totals = {t + f for t, f in counts}
    assert len(totals) == 1 and totals.pop() == 3_413_024 + 12_810
    trainable = [t for t, _ in counts]
    assert trainable == sorted(trainable, reverse=True)
    assert trainable[18] == 12_810  # only the dense head
    assert trainable[17] == 12_810 + 409_600 + 2 * 1280  # head conv and its BatchNorm scale and offset
    assert trainable[0] == sum(b.trainable_params for b in lite0.block_infos) + 12_810


def test_phase_plan():
    assert [p.name for p in plan_phases(TrainConfig(epochs=6), 18, 18)] == ["head"]
    two = plan_phases(TrainConfig(epochs=6, learning_rate=0.01, fine_tune_lr_factor=0.1), 15, 18)
    assert [(p.name, p.epochs) for p in two] == [("head", 3), ("fine-tune", 3)]
    assert two[1].learning_rate == pytest.approx(0.001) and two[1].head_learning_rate == pytest.approx(0.01)
    assert [p.name for p in plan_phases(TrainConfig(epochs=6, two_phase=False), 15, 18)] == ["fine-tune"]


def _config(**changes):
    base = TrainConfig(dataset="unused", epochs=2, batch_size=8, image_size=64, dropout=0.0, seed=3)
    return base.with_(**changes)


def test_cached_and_uncached_training_agree(small_split):
    config = _config(frozen_blocks=16, epochs=3)
    cached = train(config, small_split)
    uncached = train(config.with_(cache_features=False), small_split)
    assert cached.cached and not uncached.cached
    for a, b in zip(cached.history, uncached.history, strict=False):
        assert a["phase"] == b["phase"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-4)
    assert np.abs(cached.predictions["val"].probs - uncached.predictions["val"].probs).max() < 1e-3


def test_same_seed_same_history(small_split):
    config = _config(frozen_blocks=17, epochs=2, dropout=0.3)
    first, second = train(config, small_split), train(config, small_split)
    assert [h["loss"] for h in first.history] == [h["loss"] for h in second.history]
    assert second.timings["decoded_images"] == 0  # every image came back from the array cache
    other = train(config.with_(seed=4), small_split)
    assert [h["loss"] for h in first.history] != [h["loss"] for h in other.history]


def test_two_phase_history_and_fine_tuned_weights(small_split):
    result = train(_config(frozen_blocks=16, epochs=4), small_split)
    assert [h["phase"] for h in result.history] == ["head", "head", "fine-tune", "fine-tune"]
    # blocks 16 and 17 (block15 and the backbone's head block) were fine-tuned and are saved
    assert {k.split("/")[0] for k in result.weights} == {"classifier", "block15", "head", "rejection"}


def test_augmentation_trains_without_cache(small_split):
    result = train(_config(augment=AugmentConfig.standard()), small_split)
    assert not result.cached and len(result.history) == 2


@pytest.mark.parametrize("head", ["logreg", "svm"])
def test_sklearn_heads(small_split, head):
    result = train(_config(head=head), small_split)
    assert result.history[0]["phase"] == "fit"
    assert result.metrics["val_accuracy"] == 1.0  # colours are linearly separable
    probs = result.predictions["val"].probs
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_config_errors_name_the_fix():
    with pytest.raises(TrainingError, match="svm head is fitted on fixed feature vectors"):
        TrainConfig(head="svm", frozen_blocks=3).validate()
    with pytest.raises(TrainingError, match="learning rate must be a positive number"):
        TrainConfig(learning_rate=float("nan")).validate()
    with pytest.raises(TrainingError, match="Epochs must be at least 1, got 0"):
        TrainConfig(epochs=0).validate()


def test_nan_loss_fails_with_a_message(small_split):
    with pytest.raises(TrainingError, match="training diverged. Lower the learning rate"):
        train(_config(learning_rate=1e38, epochs=3), small_split)


def test_mirrored_strategy_on_two_logical_cpus(color_folder):
    script = f"""
import json, os
import core
from core.tf import tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from core.training.config import TrainConfig
from core.data.sampling import sample, split
from core.data.scan import scan_folder
from core.training.trainer import train
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
parts = split(sample(scan_folder({str(color_folder)!r}), per_class=6).items, 0.34, 0.0)
result = train(TrainConfig(epochs=3, batch_size=8, image_size=64), parts, strategy=strategy)
print(json.dumps({{"replicas": strategy.num_replicas_in_sync, "val": result.metrics["val_accuracy"],
                  "epochs": len(result.history)}}))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["epochs"] == 3 and result["val"] >= 0.6


# ---------- runs, worker, prediction ----------

def test_trained_run_files_and_metrics(trained_run):
    run = RunStore.default().load(trained_run)
    assert run.state == "completed" and not run.damaged
    names = {p.name for p in run.dir.iterdir()}
    assert {"config.json", "dataset.json", "split.json", "status.json", "history.csv", "metrics.json",
            "predictions.csv", "weights.npz", "manifest.json"} <= names
    metrics = run.metrics()
    assert metrics["val_accuracy"] >= 0.9 and metrics["train_accuracy"] >= 0.9
    assert len(metrics["per_class"]) == 3 and np.array(metrics["confusion"]).sum() == len(run.split().val)
    assert [h["epoch"] for h in run.history()] == [1, 2, 3]
    assert run.dataset()["sample"] == "30 images - 100% of 30"
    assert not any(p.name.endswith(".tmp") for p in run.dir.iterdir())


def test_prediction_of_a_saved_run_matches_its_evaluation(trained_run):
    run = RunStore.default().load(trained_run)
    split_ = run.split()
    saved = run.predictions()["val"]
    results = predict_sources(RunStore.default(), trained_run, [(i.relpath, i.path) for i in split_.val], k=3)
    for i, result in enumerate(results):
        assert result["image"] == saved.names[i]
        top = result["top"][0]
        assert top["label"] == saved.classes[saved.predicted[i]]
        assert top["probability"] == pytest.approx(saved.probs[i].max(), abs=1e-4)
    bad = predict_sources(RunStore.default(), trained_run, [("notes.png", b"not an image")])
    assert bad == [{"image": "notes.png", "error": "notes.png: not a recognised image file"}]
    # Every block frozen: the vectors come from the converted TFLite file, as in training; TensorFlow's
    # forward gives the same probabilities, and its traced function is traced once for one image, then all.
    model = run_model(RunStore.default(), trained_run)
    assert model.engine == "tflite"
    arrays = item_arrays(split_.val, model.size)
    run_batches(model.features, arrays[:1])
    by_tensorflow = model.head.probs(run_batches(model.features, arrays))
    assert np.abs(by_tensorflow - model.predict_arrays(arrays)).max() < 1e-3
    (function,) = model.features.__dict__["_studio_inference"].values()
    assert function.experimental_get_tracing_count() == 1


def test_damaged_run_is_flagged_and_others_still_load(trained_run, color_folder):
    other = train_in_process(TrainConfig(dataset=str(color_folder), per_class=4, epochs=1, val_fraction=0.25,
                                         test_fraction=0.0))
    assert RunStore.default().load(other).state == "completed", RunStore.default().load(other).status
    weights = RunStore.default().load(other).dir / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    runs = {r.id: r for r in RunStore.default().runs()}
    assert runs[other].state == "damaged" and "weights.npz does not match its SHA-256" in runs[other].damaged[0]
    assert runs[trained_run].state == "completed"
    with pytest.raises(RunError, match="is damaged"):
        run_model(RunStore.default(), other)


def test_settled_files_are_hashed_once_and_any_write_is_seen(tmp_path, monkeypatch):
    from core import fileio

    reads = []
    monkeypatch.setattr(fileio, "sha256_file", lambda p: reads.append(p) or fileio.sha256_bytes(p.read_bytes()))
    (tmp_path / "weights.npz").write_bytes(b"a" * 100)
    fileio.atomic_write_json(tmp_path / "manifest.json", {"weights.npz": fileio.sha256_bytes(b"a" * 100)})
    assert fileio.manifest_problems(tmp_path) == [] and fileio.manifest_problems(tmp_path) == []
    assert len(reads) == 2  # just written: not remembered
    now = time.time_ns()
    monkeypatch.setattr(fileio.time, "time_ns", lambda: now + 10**10)  # ten seconds later
    assert fileio.manifest_problems(tmp_path) == [] and fileio.manifest_problems(tmp_path) == []
    assert len(reads) == 3
    time.sleep(0.05)  # past the file system's timestamp tick
    with open(tmp_path / "weights.npz", "r+b") as f:  # same size, same inode
        f.write(b"b")
    assert fileio.manifest_problems(tmp_path) == ["weights.npz does not match its SHA-256"]




def test_cancel_and_queue(color_folder, own_runs):
    """Real worker processes: a run is cancelled at its next batch while the next one waits its turn."""
    slow = slow_config(color_folder)
    first = jobs.submit(RunStore.default(), slow)
    second = jobs.submit(RunStore.default(), slow.with_(epochs=1))
    assert wait_for(lambda: RunStore.default().load(first).state == "running")
    assert jobs.queue_position(RunStore.default(), second) == 1
    assert wait_for(lambda: len(RunStore.default().load(first).history()) >= 1)
    assert jobs.cancel(RunStore.default(), first) == "cancelling"
    assert wait_for(lambda: RunStore.default().load(first).state == "cancelled", timeout=60)
    assert "cancelled during epoch" in RunStore.default().load(first).status["message"]
    assert wait_for(lambda: RunStore.default().load(second).state == "completed")
    third = jobs.submit(RunStore.default(), slow)
    assert jobs.cancel(RunStore.default(), third) in ("cancelled", "cancelling")
    assert wait_for(lambda: RunStore.default().load(third).state == "cancelled", timeout=60)


def test_worker_reports_bad_config_as_failed(color_folder):
    run_id = train_in_process(TrainConfig(dataset=str(color_folder), backbone="efficientnet_lite0", frozen_blocks=40))
    status = RunStore.default().load(run_id).status
    assert status["state"] == "failed" and "has 18 blocks; cannot freeze 40" in status["message"]


def test_cli_train_runs_predict(tmp_path):
    """The command line as users start it: real processes for the CLI and for its worker."""
    folder = make_color_folders(tmp_path / "cli", per_class=6)
    env = {**os.environ, "STUDIO_RUNS_DIR": str(tmp_path / "runs")}

    def cli(*args):
        return run_cli_process(*args, env=env)

    out = cli("train", "--data", str(folder), "--per-class", "6", "--epochs", "2", "--frozen-blocks", "all")
    assert out.returncode == 0, out.stderr[-2000:]
    final = json.loads(out.stdout.strip().splitlines()[-1])
    assert final["state"] == "completed"
    assert {"run_id", "dir", "train_accuracy", "val_accuracy", "test_accuracy", "seconds"} <= set(final)
    assert "head epoch" in out.stdout
    listing = cli("runs")
    assert final["run_id"] in listing.stdout and "completed" in listing.stdout
    image = folder / "red" / "red_00.png"
    pred = cli("predict", final["run_id"], str(image))
    line = json.loads(pred.stdout.strip().splitlines()[-1])
    assert line["image"] == str(image) and line["top"][0]["label"] == "red"
    assert cli("train", "--data", str(tmp_path / "missing")).returncode == 2


def test_tflite_and_tensorflow_frozen_parts_train_the_same(small_split, prepared, monkeypatch):
    from core.backbones import tflite_run

    config = _config(image_size=None, epochs=3)

    def not_needed(*args):
        raise AssertionError("every block is frozen and converted: the TensorFlow backbone is not needed")

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "load_backbone", not_needed)
        fast = train(config, small_split)
        augmented = train(config.with_(augment=AugmentConfig.standard()), small_split)  # vectors per epoch
    assert augmented.timings["frozen_forward"] == "tflite" and len(augmented.history) == 3
    assert augmented.frozen_params == fast.frozen_params
    monkeypatch.setattr(tflite_run, "forward_for", lambda *args: None)
    slow = train(config, small_split)
    assert fast.timings["frozen_forward"] == "tflite" and slow.timings["frozen_forward"] == "tensorflow"
    assert (fast.trainable_params, fast.frozen_params) == (slow.trainable_params, slow.frozen_params)
    assert np.abs(fast.predictions["val"].probs - slow.predictions["val"].probs).max() < 1e-3


def test_augmented_features_differ_per_epoch_and_feed_each_epoch():
    from core.data.augment import ArrayAugmenter
    from core.training.context import Cancelled
    from core.training.inputs import augmented_features
    from core.training.keras_parts import EpochFeatures

    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    augmenter = ArrayAugmenter(AugmentConfig(rotation=0.2, translation=0.2), seed=1)
    mean_colour = lambda x: x.reshape(len(x), -1, 3).mean(axis=1).astype(np.float32)  # noqa: E731
    per_epoch = augmented_features(augmenter, mean_colour, images, 3, None, None)
    assert per_epoch.shape == (3, 5, 3)
    assert not np.allclose(per_epoch[0], per_epoch[1]) and not np.allclose(per_epoch[1], per_epoch[2])
    feed = EpochFeatures(per_epoch, np.arange(5), batch_size=5, seed=0)
    for epoch in range(3):
        x, y = feed[0]
        assert np.array_equal(x, per_epoch[epoch][y])  # epoch e reads epoch e's images, labels aligned
        feed.on_epoch_end()
    with pytest.raises(Cancelled, match="augmenting the images of epoch 1"):
        augmented_features(augmenter, mean_colour, images, 3, None, lambda: True)


def test_fine_tuning_moves_the_head_at_its_rate_and_the_blocks_at_theirs():
    """Adam's first step moves every weight with a gradient by about its learning rate: the head's by the
    head rate, the unfrozen blocks' by the fine-tuning rate."""
    from core.tf import tf_keras
    from core.training.keras_parts import TrainableModel

    inputs = tf_keras.Input((5,))
    body_layer, head_layer = tf_keras.layers.Dense(4, activation="tanh"), tf_keras.layers.Dense(3, activation="softmax")
    model = TrainableModel(inputs, head_layer(body_layer(inputs)))
    model.head, model.body = list(head_layer.trainable_variables), list(body_layer.trainable_variables)
    model.head_optimizer = tf_keras.optimizers.Adam(1e-2)
    model.compile(tf_keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    before = [v.numpy().copy() for v in model.head + model.body]
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 5)).astype("float32"), rng.integers(0, 3, 16), batch_size=16, epochs=1, verbose=0)
    moved = [np.abs(v.numpy() - b).max() for v, b in zip(model.head + model.body, before, strict=False)]
    assert moved[0] == pytest.approx(1e-2, rel=0.05) and moved[2] == pytest.approx(1e-4, rel=0.05)


def test_a_knn_run_explains_its_predictions_with_training_images(color_folder, tmp_path):
    from core.errors import StudioError
    from core.inference.export import export_run

    run_id = train_in_process(TrainConfig(dataset=str(color_folder), per_class=10, head="knn", val_fraction=0.3,
                                          test_fraction=0.0))
    assert RunStore.default().load(run_id).state == "completed", RunStore.default().load(run_id).status
    train_names = {i.relpath for i in RunStore.default().load(run_id).split().train}
    red = next(color_folder.glob("red/*.png"))
    result = predict_sources(RunStore.default(), run_id, [("red.png", str(red))], k=2)[0]
    assert result["top"][0]["label"] == "red"
    assert len(result["nearest"]) == 5 and all(n["relpath"] in train_names for n in result["nearest"])
    assert [n["label"] for n in result["nearest"][:3]] == ["red"] * 3
    assert export_run(RunStore.default(), run_id, "tflite", tmp_path / "lite").top1_agreement == 1.0
    web = export_run(
        RunStore.default(), run_id, "web", tmp_path / "web"
    )  # the ONNX check (tf2onnx maps the vote's top-k to TopK),
    assert web.top1_agreement == 1.0 and web.max_abs_diff < 1e-4  # then that graph in the page: both formats
    with pytest.raises(StudioError, match="SavedModel or TFLite"):
        export_run(RunStore.default(), run_id, "keras", tmp_path / "keras")
    at = open_page("results", run_id=run_id)
    assert "no epochs to plot" in text_of(at)


def test_a_bundled_backbones_first_run_converts_it_with_progress_then_runs_on_tflite(small_split, own_model_store):
    """Lite1 is not converted at set-up: its first run converts it (the progress says so), then its frozen part
    runs on TFLite at Lite1's own 240 px, as Lite0's does; a damaged weights file is found and only it is
    converted again."""
    import shutil

    from core.backbones import bundled, model_store

    shutil.rmtree(model_store.keras_dir("efficientnet_lite1"), ignore_errors=True)  # another test may have read it in
    for path in (model_store.tflite_path("efficientnet_lite1"), model_store.blocks_tflite_path("efficientnet_lite1")):
        path.unlink(missing_ok=True)
    phases = []
    config = _config(backbone="efficientnet_lite1", image_size=None, epochs=2)
    first = train(config, small_split, progress=lambda p: phases.append((p.phase, p.batch, p.batches)))
    assert ("convert", 0, 2) in phases and model_store.ready("efficientnet_lite1", model_store.TRAINING_PARTS)
    assert not model_store.ready("efficientnet_lite1")  # the pooled-blocks file waits for an analysis
    assert first.timings["frozen_forward"] == "tflite" and first.plan.frozen == 23
    weights = model_store.keras_dir("efficientnet_lite1") / model_store.weights_name("efficientnet_lite1")
    weights.write_bytes(weights.read_bytes()[:1000])
    assert model_store.status("efficientnet_lite1")["keras"].startswith("damaged")
    steps = []
    bundled.prepare("efficientnet_lite1", lambda stage, done, total: steps.append(stage), model_store.TRAINING_PARTS)
    assert steps == ["convert efficientnet_lite1: reading the ImageNet weights", "convert efficientnet_lite1: done"]
    assert model_store.ready("efficientnet_lite1", model_store.TRAINING_PARTS)


@pytest.mark.parametrize("changes, consumes", [({"image_size": None}, "vectors"),
                                               ({"frozen_blocks": 16}, "cut tensors")])
def test_a_run_on_the_frozen_parts_output_never_holds_the_split_decoded(small_split, monkeypatch, changes, consumes):
    """Issue 44: without augmentation, every block frozen or some fine-tuned on cached cut tensors, the split goes
    through the frozen part a chunk at a time, and trains exactly as it did with every image decoded at once."""
    from core.data import arrays
    from core.training import inputs

    config = _config(epochs=2, **changes)
    whole = train(config, small_split)
    decoded = []
    real = arrays.item_arrays
    monkeypatch.setattr(arrays, "item_arrays",
                        lambda items, *args, **kw: decoded.append(len(items)) or real(items, *args, **kw))
    monkeypatch.setattr(inputs, "STREAM", 5)
    chunked = train(config, small_split)
    assert chunked.plan.consumes == consumes and max(decoded) <= 5
    assert sum(decoded) == sum(len(getattr(small_split, n)) for n in ("train", "val", "test")), decoded
    assert np.abs(chunked.predictions["val"].probs - whole.predictions["val"].probs).max() < 1e-5
    assert [h["loss"] for h in chunked.history] == pytest.approx([h["loss"] for h in whole.history], rel=1e-5)
