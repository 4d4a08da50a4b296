"""The transfer analysis as pictures: probe accuracy by block, and accuracy by images per class."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.analysis import Analysis
from core.analysis.compare import Comparison
from core.analysis.forecast import Fit
from core.backbones.registry import backbone_title
from core.present.figures import TRAIN_COLOR, VAL_COLOR, _layout

COST_COLOR, FIT_COLOR = "#9ca3af", "#16a34a"


def nice_step(rough: float) -> float:
    """1, 2 or 5 times a power of ten, at least `rough`: tick steps people read at a glance."""
    if rough <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(rough))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= rough))


def depth_figure(analysis: Analysis, slider_block: int | None = None) -> go.Figure:
    """Accuracy of a linear probe on each block's pooled output (mean and std over folds), and the
    trainable parameters of fine-tuning from that block on; the best block and the Train slider's cut marked."""
    names = [p.block for p in analysis.depth]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=names, y=[p.trainable_params / 1e6 for p in analysis.depth], name="trainable parameters "
                         "to fine-tune from here (millions)", marker_color=COST_COLOR, opacity=0.35,
                         hovertemplate="%{x}: %{y:.2f} M<extra></extra>"), secondary_y=True)
    fig.add_trace(go.Scatter(x=names, y=[p.accuracy for p in analysis.depth], mode="lines+markers",
                             error_y=dict(array=[p.std for p in analysis.depth], visible=True),
                             name="probe accuracy (k-fold)", line=dict(color=VAL_COLOR),
                             hovertemplate="%{x}: %{y:.1%}<extra></extra>"), secondary_y=False)
    best = analysis.best_block
    fig.add_annotation(x=names[best], y=analysis.depth[best].accuracy, text="best", showarrow=True, arrowhead=2, ay=-35)
    if slider_block is not None and 0 <= slider_block < len(names):
        fig.add_vline(x=slider_block, line_dash="dash", line_color=TRAIN_COLOR)
        fig.add_annotation(x=names[slider_block], yref="paper", y=0.98, text="Train slider's cut", showarrow=False,
                           xanchor="left", yanchor="top", xshift=4, font=dict(color=TRAIN_COLOR))  # beside its line
    millions = max(p.trainable_params for p in analysis.depth) / 1e6
    fig.update_yaxes(title_text="probe accuracy", range=[0, 1.05], tickformat=".0%", secondary_y=False)
    fig.update_yaxes(title_text="trainable parameters (M)", secondary_y=True, showgrid=False, tickmode="linear",
                     tick0=0, dtick=nice_step(millions / 4), range=[0, millions * 1.05])
    fig.update_xaxes(title_text="block (input side first)", tickangle=-45)
    _layout(fig, "Which block's features separate your classes", height=460)
    return fig.update_layout(legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0.0), margin=dict(t=90))


def size_figure(analysis: Analysis) -> go.Figure:
    """Held-out probe accuracy at each number of training images per class (mean and std over draws), the
    saturating power law through it, and the forecast at 2x and 4x with its 95% bootstrap interval."""
    fig = go.Figure()
    sizes = [p.per_class for p in analysis.sizes]
    fig.add_trace(go.Scatter(x=sizes, y=[p.accuracy for p in analysis.sizes], mode="markers", name="measured",
                             error_y=dict(array=[p.std for p in analysis.sizes], visible=True),
                             marker=dict(color=VAL_COLOR, size=9),
                             hovertemplate="%{x} per class: %{y:.1%}<extra></extra>"))
    if analysis.fit:
        top = max([*sizes, *(f.per_class for f in analysis.forecast)])
        xs = np.geomspace(1, top, 60)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=Fit(**dict(zip("abc", analysis.fit, strict=True)))(xs),
                mode="lines",
                name="fitted a - b·n^-c",
                line=dict(color=FIT_COLOR),
            )
        )
    if analysis.forecast:
        f = analysis.forecast
        fig.add_trace(go.Scatter(x=[p.per_class for p in f], y=[p.accuracy for p in f], mode="markers",
                                 name="forecast (estimate, 95% interval)", marker=dict(color=FIT_COLOR, size=11,
                                                                                       symbol="diamond-open"),
                                 error_y=dict(type="data", symmetric=False, array=[p.high - p.accuracy for p in f],
                                              arrayminus=[p.accuracy - p.low for p in f], visible=True),
                                 hovertemplate="%{x} per class: about %{y:.1%}<extra>estimate</extra>"))
    marked = sorted({*sizes, *(p.per_class for p in analysis.forecast)})  # a log axis's own ticks read "8 9 1 2"
    fig.update_xaxes(title_text="training images per class", type="log", tickvals=marked,
                     ticktext=[str(n) for n in marked])
    fig.update_yaxes(title_text="held-out accuracy (last block)", range=[0, 1.05], tickformat=".0%")
    return _layout(fig, "How accuracy grows with images per class", height=420)


def backbones_figure(comparison: Comparison) -> go.Figure:
    """Best-block probe accuracy (± std over folds) against forward cost (ms per image on this machine), one
    point per backbone, the Pareto front joined and the suggestion marked."""
    rows = sorted(comparison.rows, key=lambda r: -r.images_per_second)
    cost = {r.model: 1000.0 / r.images_per_second for r in rows}
    fig = go.Figure()
    front = [r for r in rows if r.model in comparison.front]
    fig.add_trace(go.Scatter(x=[cost[r.model] for r in front], y=[r.best_accuracy for r in front], mode="lines",
                             line=dict(color=FIT_COLOR, dash="dot"), name="best at its cost (Pareto front)",
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=[cost[r.model] for r in rows], y=[r.best_accuracy for r in rows], mode="markers+text",
        error_y=dict(array=[r.best_std for r in rows], visible=True), name="backbone (best block's probe)",
        error_x=dict(type="data", symmetric=False, visible=True,  # the range of the interleaved timings
                     array=[1000.0 / r.speed_low - cost[r.model] if r.speed_low else 0 for r in rows],
                     arrayminus=[cost[r.model] - 1000.0 / r.speed_high if r.speed_high else 0 for r in rows]),
        text=[backbone_title(r.model) if r.pretrained else "random weights" for r in rows], textposition="top right",
        marker=dict(size=12, color=[VAL_COLOR if r.pretrained else COST_COLOR for r in rows]),
        customdata=[[r.best_block, r.images_per_second, r.engine] for r in rows],
        hovertemplate="%{text}: %{y:.1%} at %{customdata[0]}<br>%{x:.1f} ms per image "
                      "(%{customdata[1]:.0f} images/s, %{customdata[2]})<extra></extra>"))
    chosen = comparison.row(comparison.suggested)
    fig.add_annotation(x=cost[chosen.model], y=chosen.best_accuracy, text="suggested", showarrow=True, arrowhead=2,
                       ax=-50, ay=30)
    low = min(r.best_accuracy - r.best_std for r in rows)
    fig.update_yaxes(title_text="probe accuracy (best block)", tickformat=".0%", range=[max(0.0, low - 0.05), 1.02])
    fig.update_xaxes(title_text="forward cost on this machine (ms per image)", range=[0, max(cost.values()) * 1.3])
    _layout(fig, "Accuracy against cost, per backbone", height=430)
    return fig.update_layout(legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0.0), margin=dict(t=90))
