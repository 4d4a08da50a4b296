"""Insight views: each asserts what it shows, not just its type."""

import numpy as np
import pytest
from PIL import Image

from core.explain import insight
from core.images import colormap, filter_grid, overlay
from core.model.metrics import Predictions
from core.present import figures
from core.present.views import RunViews, learning_curve_points
from core.runs.store import RunStore
from tests.helpers import square_image


@pytest.fixture(scope="module")
def hand_predictions():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.5, 0.1, 0.4]])
    return Predictions(
        names=("a0", "b0", "b1", "c0", "c1"), labels=np.array([0, 1, 1, 2, 2]), probs=probs, classes=("a", "b", "c")
    )


def test_confusion_cells_and_tables(hand_predictions):
    p = hand_predictions
    assert p.confusion().tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 1]]
    assert p.cell(1, 0) == ["b1"] and p.cell(2, 0) == ["c1"] and p.cell(0, 0) == ["a0"]
    assert p.most_confused() == [("b", "a", 1), ("c", "a", 1)]
    a = p.per_class()[0]
    assert a["precision"] == pytest.approx(1 / 3) and a["recall"] == 1.0 and a["support"] == 1
    wrong = p.misclassified()
    assert [w["name"] for w in wrong] == ["b1", "c1"]  # highest loss first: -log(0.3) > -log(0.4)
    fig = figures.confusion_matrix(p)
    assert fig.data[0].z.tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 1]]
    norm = figures.confusion_matrix(p, normalise=True)
    assert norm.data[0].z[1].tolist() == [0.5, 0.5, 0.0] and norm.data[0].text[1][0] == "50.0%"


def test_training_curves_mark_phase_two():
    history = [{"epoch": e, "phase": "head" if e <= 2 else "fine-tune", "accuracy": 0.5 + e / 10, "loss": 1 / e,
                "val_accuracy": 0.4 + e / 10, "val_loss": 1.2 / e} for e in range(1, 5)]
    fig = figures.training_curves(history)
    assert [t.name for t in fig.data] == ["train", "validation", "train", "validation"]
    assert list(fig.data[1].y) == [h["val_accuracy"] for h in history]
    assert [s.x0 for s in fig.layout.shapes] == [2.5, 2.5]
    assert fig.layout.annotations[-1].text.strip() == "fine-tuning starts"
    single = figures.training_curves([{**h, "phase": "head"} for h in history])
    assert not single.layout.shapes


def test_run_views_on_the_trained_run(trained_run):
    views = RunViews(RunStore.default().load(trained_run))
    val = views.predictions["val"]
    fig = views.confusion()
    assert np.array(fig.data[0].z).sum() == len(val.names) == len(views.split.val)
    assert list(fig.data[0].x) == list(val.classes)
    assert len(views.curves().data) == 4
    emb = views.embedding(dims=2)
    assert sum(len(t.x) for t in emb.data) == len(val.names)
    assert {t.name for t in emb.data} <= {*val.classes, *(f"{c} (misclassified)" for c in val.classes)}
    assert emb.layout.xaxis.title.text.startswith("PC1 (")
    emb3 = views.embedding(dims=3)
    assert emb3.data[0].type == "scatter3d"


def test_pca_projects_onto_the_largest_variance():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(0, 10, 200), rng.normal(0, 1, 200), rng.normal(0, 0.1, 200)]
    coords, variance = figures.pca(x, 2)
    assert coords.shape == (200, 2) and variance[0] > 0.95
    assert abs(np.corrcoef(coords[:, 0], x[:, 0])[0, 1]) > 0.99


def test_activation_layers_are_ordered_and_labelled(lite0):
    layers = insight.activation_layers(lite0)
    blocks = [r.block for r in layers]
    order = ["stem"] + [f"block{i}" for i in range(16)] + ["head"]
    assert [b for i, b in enumerate(blocks) if i == 0 or blocks[i - 1] != b] == order
    first = layers[0]
    assert first.name == "stem_conv" and first.shape == (112, 112, 32) and first.label == "stem conv - 112x112x32"
    outputs = insight.activation_layers(lite0, inner=False)
    assert [r.name for r in outputs] == order[:-1]  # the head block pools to a vector
    assert outputs[-1].shape == (7, 7, 320)  # block15's output; the head pools to a vector
    assert insight.default_gradcam_layer(lite0) == "head_relu"


def test_activation_grid_shows_the_most_active_channels(lite0, skimage_images):
    from core.data.decode import resize

    image = resize(Image.fromarray(skimage_images["chelsea"]), 224, crop=True)
    maps = insight.activations(lite0, image, "block3")
    assert maps.shape == (28, 28, 40)  # stage 3: stride 2, 40 channels
    tiles, channels = insight.activation_grid(maps, n=8, columns=4, tile=50)
    means = maps.mean(axis=(0, 1))
    assert channels == list(np.argsort(-means)[:8])
    assert tiles.size == (4 * 54 + 4, 2 * (50 + 22 + 4) + 4)


def test_first_layer_filters_for_layered_and_hub_backbones(lite0, lite0_hub):
    kernel = insight.first_layer_kernel(lite0)
    assert kernel.shape == (3, 3, 3, 32)
    img = filter_grid(kernel, scale=8, columns=8)
    assert img.size == (8 * 28 + 4, 4 * (24 + 16 + 4) + 4)  # 32 tiles of 24 px in 8 columns, 4 rows
    assert np.allclose(insight.first_layer_kernel(lite0_hub), kernel)


def test_colormap_and_overlay():
    ends = colormap(np.array([0.0, 1.0]))
    assert ends[0].tolist() == [68, 1, 84] and ends[1].tolist() == [253, 231, 37]
    base = np.zeros((10, 10, 3), np.uint8)
    heat = np.zeros((2, 2))
    heat[0, 0] = 1
    out = np.asarray(overlay(base, heat, alpha=1.0))
    assert out[0, 0].tolist() == [253, 231, 37] and out[9, 9].tolist() == [68, 1, 84]


def test_gradcam_peaks_inside_the_deciding_square(square_run):
    views = RunViews(RunStore.default().load(square_run))
    assert views.run.metrics()["val_accuracy"] == 1.0
    rng = np.random.default_rng(7)
    square_class = views.model.classes.index("square")
    for at in ((16, 16), (150, 40), (90, 150)):
        image, (top, left) = square_image(rng, at=at)
        cam, index = insight.gradcam(views.model, image, class_index=square_class)
        assert cam.shape == (7, 7)
        row, col = np.unravel_index(np.argmax(cam), cam.shape)
        centre = ((row + 0.5) * 32, (col + 0.5) * 32)  # each cell covers 32x32 input pixels
        assert top - 32 <= centre[0] <= top + 56 + 32 and left - 32 <= centre[1] <= left + 56 + 32, (at, row, col)
        heat, _ = insight.smoothgrad(views.model, image, class_index=square_class, samples=6)
        inside = np.zeros(heat.shape, bool)
        inside[top:top + 56, left:left + 56] = True
        assert heat[inside].mean() > 2 * heat[~inside].mean()


def test_misclassified_gallery_and_before_after(square_run, trained_run):
    views = RunViews(RunStore.default().load(square_run))
    real = views.predictions["val"]
    # Two planted mistakes on the run's own validation images: one confident (p(true) = 0.05), one close
    # (p(true) = 0.4). The gallery holds exactly these two, the confident mistake first, each with its image
    # and its Grad-CAM overlay.
    probs = np.full((len(real.names), 2), 0.01) + 0.98 * np.eye(2)[real.labels]
    probs[0, real.labels[0]], probs[0, 1 - real.labels[0]] = 0.05, 0.95
    probs[1, real.labels[1]], probs[1, 1 - real.labels[1]] = 0.4, 0.6
    views.predictions = {
        **views.predictions,
        "val": Predictions(names=real.names, labels=real.labels, probs=probs, classes=real.classes),
    }
    rows = views.misclassified(k=5, saliency=True)
    assert [r["name"] for r in rows] == [real.names[0], real.names[1]]
    assert all(r["true"] != r["predicted"] for r in rows)
    assert rows[0]["loss"] == pytest.approx(-np.log(0.05)) and rows[1]["loss"] == pytest.approx(-np.log(0.4))
    assert all(r["image"].size == (112, 112) and r["saliency"].size == (112, 112) for r in rows)
    assert not np.array_equal(np.asarray(rows[0]["image"]), np.asarray(rows[0]["saliency"]))
    image = square_image(np.random.default_rng(3))[0]
    before, after = views.before_after(image, "block15")  # block15 was fine-tuned in this run
    assert np.asarray(before).shape == np.asarray(after).shape
    assert not np.array_equal(np.asarray(before), np.asarray(after))
    frozen = RunViews(RunStore.default().load(trained_run))  # every block frozen: nothing changed
    b2, a2 = frozen.before_after(frozen.image(frozen.predictions["val"].names[0]), "block15")
    assert np.array_equal(np.asarray(b2), np.asarray(a2))


def test_learning_curve_from_runs(trained_run, square_run):
    runs = [RunStore.default().load(trained_run), RunStore.default().load(square_run)]
    points = learning_curve_points(runs)
    assert {p["per_class"] for p in points} == {10, 16}
    fig = figures.learning_curve(points)
    assert len(fig.data) == 2 and fig.layout.xaxis.title.text == "training images per class"
