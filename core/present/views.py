"""Every insight view of one run, computed once and shared by the app, the CLI and the report."""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.decode import load_array
from core.explain import insight
from core.fileio import csv_text
from core.images import grid, thumbnail
from core.present import figures
from core.runs.store import Run, RunState
from core.runs.summary import RunSummary

EMBEDDING_POINTS = 2_000


@dataclass(frozen=True, kw_only=True)
class Saliency:
    overlay: Image.Image  # the heat map over the image
    heat: np.ndarray  # in [0, 1], the image's height and width
    class_name: str  # the class it explains


@dataclass(frozen=True, kw_only=True)
class ActivationViews:
    tiles: Image.Image  # the grid of the strongest channels' maps
    mean_overlay: Image.Image  # the channels' mean over the image
    channels: list  # the channels shown, in grid order


class RunViews:
    def __init__(self, run: Run):
        self.run = run

    @cached_property
    def model(self):
        from core.inference.predict import model_of

        return model_of(self.run)

    @cached_property
    def predictions(self):
        return self.run.predictions()

    @cached_property
    def split(self):
        return self.run.split()

    @cached_property
    def _paths(self) -> dict[str, str]:
        s = self.split
        return {i.relpath: i.path for i in (*s.train, *s.val, *s.test)}

    def image(self, relpath: str, size: int | None = None) -> np.ndarray:
        """A dataset image of this run, decoded at the model's input size (or `size`)."""
        return load_array(self._paths[relpath], size or self.model.size, name=relpath)

    def metrics_csv(self) -> str:
        """The run's accuracies as comment lines, then per-class scores on validation, as CSV."""
        metrics = self.run.metrics()
        buf = io.StringIO()
        buf.writelines(f"# {k},{metrics.get(k)}\n" for k in ("train_accuracy", "val_accuracy", "test_accuracy",
                                                             "seconds"))
        columns = ["class", "precision", "recall", "f1", "support"]
        rows = ([r[c] for c in columns] for r in self.predictions["val"].per_class())
        return buf.getvalue() + csv_text(columns, rows)

    # ----- figures -----

    def curves(self):
        return figures.training_curves(self.run.history())

    def confusion(self, *, normalise: bool = False):
        return figures.confusion_matrix(self.predictions["val"], normalise=normalise)

    def per_class(self):
        return figures.per_class_bars(self.predictions["val"].per_class())

    def embedding(self, split: str = "val", dims: int = 2, method: str = "pca"):
        """The split's feature vectors projected; at most EMBEDDING_POINTS images of it, drawn at random and
        said in the title (t-SNE grows with the square of the points, and a plot of more is one blot)."""
        p = self.predictions[split]
        shown = np.arange(len(p.names))
        if len(shown) > EMBEDDING_POINTS:
            shown = np.sort(np.random.default_rng(0).choice(len(shown), EMBEDDING_POINTS, replace=False))
        names = [p.names[i] for i in shown]
        feats = np.concatenate([insight.feature_vectors(self.model, np.stack([self.image(n) for n in part]))
                                for part in _batches(names, 256)])
        labels = [p.classes[p.labels[i]] for i in shown]
        which = f"{len(shown):,} of the {len(p.names):,} {'validation' if split == 'val' else split} images, " \
                "drawn at random" if len(shown) < len(p.names) else \
                f"the {'validation' if split == 'val' else split} images"
        return figures.embedding(feats, labels, names, p.predicted[shown] != p.labels[shown], dims, method,
                                 title=f"Feature vectors of {which} ({method.upper()}, {dims}-D)")

    # ----- images -----

    def misclassified(self, k: int = 12, *, saliency: bool = False, split: str = "val") -> list[dict]:
        """Top losses among wrong predictions: rows with 'image' (PIL) and optionally 'saliency'."""
        rows = self.predictions[split].misclassified()[:k]
        for row in rows:
            array = self.image(row["name"])
            row["image"] = thumbnail(array, 112)
            if saliency:
                heat, _ = insight.gradcam(self.model, array) if self.model.backbone.layered else \
                    insight.smoothgrad(self.model, array)
                row["saliency"] = thumbnail(insight.saliency_overlay(array, heat), 112)
        return rows

    def nearest_training(self, array: np.ndarray, n: int = 5) -> list[dict]:
        """The training images nearest to this image in feature space (heads that keep them), each with
        its thumbnail: what a k-NN or nearest-mean prediction rests on. Empty for other heads."""
        if not self.model.explains:
            return []
        rows = self.model.nearest(array[None], n)[0]
        for row in rows:
            row["image"] = thumbnail(self.image(row["relpath"]), 112)
        return rows

    def misclassified_grid(self, k: int = 12, *, saliency: bool = True) -> Image.Image:
        rows = self.misclassified(k, saliency=saliency)
        tiles, labels = [], []
        for r in rows:
            tiles.append(r["saliency"] if saliency else r["image"])
            labels.append(f"{r['true']}>{r['predicted']} {r['probability']:.2f}")
        return grid(tiles, columns=6, labels=labels)

    def saliency(self, array: np.ndarray, method: str = "gradcam", layer: str | None = None,
                 class_index: int | None = None) -> Saliency:
        """Where the model looked for one image (Grad-CAM on layered backbones, else SmoothGrad)."""
        if method == "gradcam" and self.model.backbone.layered:
            heat, index = insight.gradcam(self.model, array, class_index, layer)
        else:
            heat, index = insight.smoothgrad(self.model, array, class_index)
        return Saliency(overlay=insight.saliency_overlay(array, heat), heat=heat, class_name=self.model.classes[index])

    def activation_views(self, array: np.ndarray, layer: str, n: int = 16) -> ActivationViews:
        maps = insight.activations(self.model.backbone, array, layer)
        tiles, channels = insight.activation_grid(maps, n)
        return ActivationViews(tiles=tiles, mean_overlay=insight.channel_mean_overlay(array, maps), channels=channels)

    def before_after(self, array: np.ndarray, layer: str, n: int = 8) -> tuple[Image.Image, Image.Image]:
        """The same activation grid on the original pretrained backbone and on this run's backbone."""
        from core.backbones import pretrained_backbone

        pretrained = pretrained_backbone(self.run.config.backbone, self.run.config.image_size)
        before, _ = insight.activation_grid(insight.activations(pretrained, array, layer), n)
        after, _ = insight.activation_grid(insight.activations(self.model.backbone, array, layer), n)
        return before, after

    def filters(self) -> Image.Image:
        from core.images import filter_grid

        return filter_grid(insight.first_layer_kernel(self.model.backbone))


def render_all(run: Run, out_dir: str | Path) -> list[Path]:
    """Write every view of a run as PNG files (plotly figures through kaleido); return the paths."""
    import os
    import shutil

    browser = shutil.which("chromium")
    if "BROWSER_PATH" not in os.environ and browser:
        os.environ["BROWSER_PATH"] = browser  # kaleido renders plotly with a browser
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = RunViews(run)
    written: list[Path] = []

    def save_fig(fig, name, width=1000):
        path = out / f"{name}.png"
        fig.write_image(str(path), width=width, height=fig.layout.height or 420, scale=1)
        written.append(path)

    def save_img(img: Image.Image, name):
        path = out / f"{name}.png"
        img.save(path)
        written.append(path)

    save_fig(views.curves(), "curves")
    save_fig(views.confusion(), "confusion", 700)
    save_fig(views.confusion(normalise=True), "confusion_normalised", 700)
    save_fig(views.per_class(), "per_class")
    save_fig(views.embedding(dims=2), "embedding_pca_2d", 800)
    save_img(views.misclassified_grid(12, saliency=True), "misclassified_gradcam")
    first = views.predictions["val"].names[0]
    array = views.image(first)
    save_img(views.saliency(array, "gradcam").overlay, "gradcam")
    save_img(views.saliency(array, "smoothgrad").overlay, "smoothgrad")
    save_img(views.filters(), "first_layer_filters")
    if views.model.backbone.layered:
        layers = insight.activation_layers(views.model.backbone, inner=False)
        for ref in (layers[1], layers[len(layers) // 2], layers[-1]):
            found = views.activation_views(array, ref.name)
            save_img(found.tiles, f"activations_{ref.name}")
            save_img(found.mean_overlay, f"activation_mean_{ref.name}")
        before, after = views.before_after(array, layers[-1].name)
        save_img(grid([before, after], columns=2, labels=["pretrained", "this run"], label_height=16),
                 "before_after")
    return written


def learning_curve_points(runs: list[Run]) -> list[dict]:
    """Completed runs as learning-curve points: one series per backbone, depth, augmentation and head."""
    summaries = [RunSummary.of(run) for run in runs if run.state == RunState.COMPLETED]
    return [{"series": r.series(), "per_class": r.per_class or 0, "val_accuracy": r.val_accuracy, "share": r.share,
             "interval": r.val_interval, "run": r.id} for r in summaries]


def _batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]
