"""Plotly figures: training curves, confusion matrix, per-class bars, embeddings, learning curves."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.model.metrics import Predictions

TRAIN_COLOR, VAL_COLOR = "#2563eb", "#ea580c"
APART_COLOR = "#9ca3af"  # what belongs to no class
CLASS_COLORS = ["#2563eb", "#ea580c", "#16a34a", "#dc2626", "#9333ea", "#92400e", "#db2777", "#4b5563",
                "#ca8a04", "#0891b2"]


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01), height=height, margin=dict(l=60, r=20, t=60, b=50),
                      template="plotly_white", legend=dict(orientation="h", y=-0.2))
    return fig


def phase2_start(history: list[dict]) -> int | None:
    """The first fine-tune epoch, when a head-only phase came before it."""
    phases = [h.get("phase") for h in history]
    if "head" in phases and "fine-tune" in phases:
        return history[phases.index("fine-tune")]["epoch"]
    return None


def training_curves(history: list[dict], title: str = "Training curves") -> go.Figure:
    """Accuracy and loss per epoch for train and validation; phase 2's start marked."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Accuracy", "Loss"), horizontal_spacing=0.1)
    epochs = [h["epoch"] for h in history]
    for col, metric in ((1, "accuracy"), (2, "loss")):
        for key, name, color in ((metric, "train", TRAIN_COLOR), (f"val_{metric}", "validation", VAL_COLOR)):
            values = [h.get(key) for h in history]
            if any(v is not None for v in values):
                fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=name,
                                         line=dict(color=color), legendgroup=name, showlegend=col == 1), 1, col)
        fig.update_xaxes(title_text="epoch", row=1, col=col, dtick=max(1, len(epochs) // 10))
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="cross-entropy", rangemode="tozero", row=1, col=2)
    start = phase2_start(history)
    if start is not None:
        for col in (1, 2):
            fig.add_vline(x=start - 0.5, line_dash="dash", line_color="#6b7280", row=1, col=col)
        fig.add_annotation(x=start - 0.5, y=0.02, xref="x", yref="y", text=" fine-tuning starts", showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(size=11, color="#374151"))
    return _layout(fig, title)


def confusion_matrix(predictions: Predictions, *, normalise: bool = False, title: str | None = None) -> go.Figure:
    """Heatmap of true (rows) vs predicted (columns); counts, or row-normalised to recall."""
    counts = predictions.confusion()
    classes = list(predictions.classes)
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts, dtype=float), where=totals > 0)
        text = [[f"{v:.1%}" for v in row] for row in values]
        colorbar: dict[str, Any] = dict(title=dict(text="share of row", side="right"), tickformat=".0%")
    else:
        values = counts
        text = [[str(v) for v in row] for row in counts]
        colorbar = dict(title=dict(text="images", side="right"), tickformat="d",
                        dtick=max(1, int(np.ceil(counts.max() / 5))))  # whole images only
    fig = go.Figure(go.Heatmap(z=values, x=classes, y=classes, text=text, texttemplate="%{text}",
                               colorscale="Blues", colorbar=colorbar, zmin=0, hoverinfo="skip"))
    # Invisible markers on the cell centres carry the hover text and the clicks: heatmaps send no click
    # events, and a trace with hoverinfo "skip" sends none either.
    fig.add_trace(go.Scatter(x=[p for _ in classes for p in classes], y=[t for t in classes for _ in classes],
                             customdata=[cell for row in text for cell in row], mode="markers",
                             marker=dict(size=28, opacity=0.0, symbol="square"), showlegend=False, name="cells",
                             hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata}<extra></extra>"))
    fig.update_xaxes(title_text="predicted", type="category", side="bottom")
    fig.update_yaxes(title_text="true", type="category", autorange="reversed")
    size = max(360, 60 + 42 * len(classes))
    return _layout(fig, title or ("Confusion matrix (row-normalised)" if normalise else "Confusion matrix"), size)


def per_class_bars(rows: list[dict], title: str = "Per-class precision, recall and F1") -> go.Figure:
    classes = [r["class"] for r in rows]
    fig = go.Figure()
    for key, color in (("precision", TRAIN_COLOR), ("recall", VAL_COLOR), ("f1", "#16a34a")):
        fig.add_trace(go.Bar(x=classes, y=[r[key] for r in rows], name=key, marker_color=color))
    fig.update_yaxes(title_text="score", range=[0, 1.02])
    fig.update_xaxes(title_text="class", type="category")
    return _layout(fig.update_layout(barmode="group"), title)


def class_counts(counts: dict[str, int], title: str = "Images per class", *, apart: str | None = None) -> go.Figure:
    """A bar per class; the `apart` bar (images that fit no class) in grey."""
    colors = [APART_COLOR if name == apart else TRAIN_COLOR for name in counts]
    fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), marker_color=colors,
                           text=list(counts.values()), textposition="outside"))
    fig.update_xaxes(title_text="class", type="category")
    fig.update_yaxes(title_text="images")
    return _layout(fig, title, 320)


def pca(features: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Projection on the first `dims` principal components and their explained variance ratios."""
    centred = features - features.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    variance = s**2 / max((s**2).sum(), 1e-12)
    return centred @ vt[:dims].T, variance[:dims]


def embedding(features: np.ndarray, labels: list[str], names: list[str], wrong: np.ndarray, dims: int = 2,
              method: str = "pca", seed: int = 0, title: str | None = None) -> go.Figure:
    """Feature vectors projected to 2-D or 3-D, coloured by class, misclassified points as crosses."""
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = max(2.0, min(30.0, (len(features) - 1) / 3))
        coords = TSNE(dims, perplexity=perplexity, random_state=seed, init="pca").fit_transform(features)
        axis = ["t-SNE 1", "t-SNE 2", "t-SNE 3"]
    else:
        coords, variance = pca(features, dims)
        axis = [f"PC{i + 1} ({variance[i]:.0%} of variance)" for i in range(dims)]
    fig = go.Figure()
    classes = sorted(set(labels))
    for c_index, cls in enumerate(classes):
        for is_wrong in (False, True):
            mask = np.array([(lab == cls) and (bool(w) == is_wrong) for lab, w in zip(labels, wrong, strict=True)])
            if not mask.any():
                continue
            marker = dict(color=CLASS_COLORS[c_index % len(CLASS_COLORS)], size=9 if is_wrong else 6,
                          symbol="x" if is_wrong else "circle", line=dict(width=0))
            text = [n for n, m in zip(names, mask, strict=True) if m]
            name = f"{cls} (misclassified)" if is_wrong else cls
            if dims == 3:
                fig.add_trace(go.Scatter3d(x=coords[mask, 0], y=coords[mask, 1], z=coords[mask, 2], mode="markers",
                                           marker=marker, text=text, name=name, hovertemplate="%{text}<extra></extra>"))
            else:
                fig.add_trace(go.Scatter(x=coords[mask, 0], y=coords[mask, 1], mode="markers", marker=marker,
                                         text=text, name=name, hovertemplate="%{text}<extra></extra>"))
    if dims == 3:
        fig.update_layout(scene=dict(xaxis_title=axis[0], yaxis_title=axis[1], zaxis_title=axis[2]))
    else:
        fig.update_xaxes(title_text=axis[0])
        fig.update_yaxes(title_text=axis[1])
    return _layout(fig, title or f"Feature vectors ({method.upper()}, {dims}-D)", 480)


def learning_curve(points: list[dict], title: str = "Validation accuracy vs training-set size") -> go.Figure:
    """points: {"series": label, "per_class": int, "val_accuracy": float, "share": float | None,
    "interval": (low, high) | None}; error bars: the 95% Wilson interval of each run's validation size."""
    fig = go.Figure()
    for i, series in enumerate(sorted({p["series"] for p in points})):
        pts = sorted((p for p in points if p["series"] == series), key=lambda p: p["per_class"])
        above = [(p["interval"][1] - p["val_accuracy"]) if p.get("interval") else 0 for p in pts]
        below = [(p["val_accuracy"] - p["interval"][0]) if p.get("interval") else 0 for p in pts]
        fig.add_trace(go.Scatter(x=[p["per_class"] for p in pts], y=[p["val_accuracy"] for p in pts],
                                 error_y=dict(type="data", array=above, arrayminus=below, thickness=1),
                                 mode="lines+markers", name=series,
                                 line=dict(color=CLASS_COLORS[i % len(CLASS_COLORS)]),
                                 hovertemplate="%{x} images per class<br>val accuracy %{y:.1%}<extra></extra>"))
    marked = sorted({p["per_class"] for p in points})  # a log axis's own ticks read "8 9 1 2"
    fig.update_xaxes(title_text="training images per class", type="log", tickvals=marked,
                     ticktext=[str(n) for n in marked])
    fig.update_yaxes(title_text="validation accuracy", range=[0, 1.02], tickformat=".0%")
    return _layout(fig, title)


def top_k_bars(top: list[dict], title: str) -> go.Figure:
    """Horizontal bars of the top-k class probabilities, best on top."""
    fig = go.Figure(go.Bar(x=[t["probability"] for t in top][::-1], y=[t["label"] for t in top][::-1],
                           orientation="h", marker_color=TRAIN_COLOR,
                           text=[f"{t['probability']:.1%}" for t in top][::-1], textposition="auto"))
    fig.update_xaxes(title_text="probability", range=[0, 1])
    fig.update_yaxes(type="category")
    return _layout(fig, title, 120 + 32 * len(top))


def compare_curves(histories: dict[str, list[dict]], metric: str = "val_accuracy") -> go.Figure:
    """One line per run for a metric (validation accuracy by default)."""
    fig = go.Figure()
    for i, (label, history) in enumerate(histories.items()):
        fig.add_trace(go.Scatter(x=[h["epoch"] for h in history], y=[h.get(metric) for h in history],
                                 mode="lines+markers", name=label,
                                 line=dict(color=CLASS_COLORS[i % len(CLASS_COLORS)])))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=metric.replace("_", " "), range=[0, 1.02] if "accuracy" in metric else None)
    return _layout(fig, f"{metric.replace('_', ' ').capitalize()} per epoch")


def compare_per_class(per_class: dict[str, list[dict]], key: str = "recall") -> go.Figure:
    """Grouped bars: per-class recall (accuracy within the class) for each run."""
    fig = go.Figure()
    for i, (label, rows) in enumerate(per_class.items()):
        fig.add_trace(go.Bar(x=[r["class"] for r in rows], y=[r[key] for r in rows], name=label,
                             marker_color=CLASS_COLORS[i % len(CLASS_COLORS)]))
    fig.update_xaxes(title_text="class", type="category")
    fig.update_yaxes(title_text=f"{key} (validation)", range=[0, 1.02])
    return _layout(fig.update_layout(barmode="group"), f"Per-class {key}")


def rate_curve(rates, losses, suggested: float, steepest: float, title: str) -> go.Figure:
    """Smoothed training loss against a learning rate that grew every batch (log scale), the suggestion marked."""
    fig = go.Figure(go.Scatter(x=list(rates), y=list(losses), mode="lines", name="smoothed loss",
                               line=dict(color=VAL_COLOR), hovertemplate="rate %{x:.2g}: loss %{y:.3f}<extra></extra>"))
    low, high = float(min(losses)), float(max(losses))
    marks = ((suggested, "suggested (a tenth of the minimum)", "dash"), (steepest, "steepest fall", "dot"))
    for rate, name, dash in marks:
        fig.add_trace(go.Scatter(x=[rate, rate], y=[low, high], mode="lines", name=f"{name}: {rate:.2g}",
                                 line=dict(color=TRAIN_COLOR, dash=dash), hoverinfo="skip"))
    fig.update_xaxes(title_text="learning rate", type="log")
    fig.update_yaxes(title_text="training loss (smoothed)")
    return _layout(fig, title)


def reliability_diagram(before: list[dict], after: list[dict], title: str = "Reliability (validation)") -> go.Figure:
    """Accuracy against confidence per bin (core.model.calibration.reliability rows), before and after temperature
    scaling; a calibrated model sits on the diagonal. Marker size: images in the bin."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#9ca3af", dash="dot"),
                               name="perfectly calibrated"))
    for rows, name, color in ((before, "before scaling", "#9ca3af"), (after, "after temperature scaling",
                                                                       VAL_COLOR)):
        if rows:
            fig.add_trace(go.Scatter(x=[r["confidence"] for r in rows], y=[r["accuracy"] for r in rows],
                                     mode="lines+markers", name=name, line=dict(color=color),
                                     marker=dict(size=[6 + 2 * np.sqrt(r["count"]) for r in rows]),
                                     customdata=[r["count"] for r in rows],
                                     hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} "
                                                   "images<extra></extra>"))
    fig.update_xaxes(title="confidence (top probability)", range=[0, 1.02])
    fig.update_yaxes(title="accuracy", range=[0, 1.02])
    return _layout(fig, title)
