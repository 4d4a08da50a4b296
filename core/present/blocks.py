"""The backbone's blocks as a diagram: parameters per block, frozen vs trainable."""

from __future__ import annotations

import plotly.graph_objects as go

FROZEN_COLOR, TRAINABLE_COLOR = "#9ca3af", "#2563eb"


def blocks_figure(block_infos, frozen: int, head_params: int) -> go.Figure:
    """A bar per block, grey where frozen, blue where it trains, and the new classifier head last (it always
    trains: with every block frozen it is the only blue bar)."""
    names = [b.name for b in block_infos] + ["new head"]
    params = [b.params for b in block_infos] + [head_params]
    colors = [FROZEN_COLOR if i < frozen else TRAINABLE_COLOR for i in range(len(block_infos))] + [TRAINABLE_COLOR]
    shapes = ["x".join(str(d) for d in b.output_shape) or "?" for b in block_infos] + ["class probabilities"]
    fig = go.Figure(go.Bar(x=names, y=params, marker_color=colors, customdata=shapes, showlegend=False,
                           hovertemplate="%{x}<br>%{y:,} parameters<br>output %{customdata}<extra></extra>"))
    for color, label in ((FROZEN_COLOR, "frozen"), (TRAINABLE_COLOR, "trainable")):
        fig.add_trace(go.Bar(x=[None], y=[None], marker_color=color, name=label, showlegend=True))
    fig.update_yaxes(title_text="parameters (log scale)", type="log", dtick=1)
    fig.update_xaxes(title_text="block (input side on the left)", type="category", tickangle=-45)
    fig.update_layout(height=300, margin=dict(l=60, r=20, t=30, b=80), template="plotly_white",
                      legend=dict(orientation="h", y=1.15), bargap=0.15)
    return fig
