"""Pictures and charts of what a model does: image grids and plotly figures.

Nothing here draws on a screen or imports Streamlit; every function returns a value
(an RGB array or a ``plotly`` figure) that a web page, a notebook or a test can show.
Small images are enlarged with nearest-neighbour so each pixel stays a crisp square
(a 28x28 digit must be readable on a projector).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots
from torchvision.utils import make_grid

from .analysis import PCA, Sweep

GRID_LINE = 1.0  # white lines between tiles


def upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H*scale, W*scale) by repeating pixels (no smoothing)."""
    return x if scale == 1 else F.interpolate(x, scale_factor=scale, mode="nearest")


def image_grid(images: torch.Tensor, nrow: int | None = None, scale: int = 4,
               padding: int = 2) -> np.ndarray:
    """A batch as one picture: (H, W, 3) uint8, ``nrow`` images per row.

    Args:
        images: (B, C, H, W) float in [0, 1] (values outside are clipped), C = 1 or 3.
        nrow: images per row; default all in one row.
        scale: nearest-neighbour enlargement of each image.
        padding: white pixels between images (not enlarged).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1 or 3, H, W), got {tuple(images.shape)}")
    x = upscale(images.detach().float().cpu().clamp(0, 1), scale)
    grid = make_grid(x, nrow=nrow or len(x), padding=padding, pad_value=GRID_LINE)
    return grid.mul(255).round().byte().permute(1, 2, 0).numpy()


def fit_scale(n_images: int, size: int, width: int = 960, lo: int = 2, hi: int = 6) -> int:
    """The largest whole enlargement that fits ``n_images`` of ``size`` px in ``width``."""
    return max(lo, min(hi, width // max(1, n_images * size)))


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Scale each image of a batch to [0, 1] (min to 0, max to 1) for display."""
    flat = x.flatten(1)
    lo = flat.min(1).values.view(-1, *([1] * (x.ndim - 1)))
    hi = flat.max(1).values.view(-1, *([1] * (x.ndim - 1)))
    return (x - lo) / (hi - lo).clamp(min=1e-8)


# ------------------------------------------------------------------------- heatmaps
def _heatmap(z: np.ndarray, name: str, **kw) -> go.Heatmap:
    return go.Heatmap(z=z, name=name, coloraxis="coloraxis",
                      hovertemplate=name + "<br>row %{y}, col %{x}<br>value %{z:.3f}<extra></extra>",
                      **kw)


def heatmap_grid(maps: torch.Tensor, titles: Sequence[str], cols: int = 8,
                 colorscale: str = "Viridis", shared_scale: bool = True,
                 width: int = 900, max_panel: int = 260) -> go.Figure:
    """Activation maps (N, H, W) as a grid of heatmaps, one per map, row 0 at the top.

    With ``shared_scale`` all maps share one colour range, so brighter means a larger
    value in every panel; otherwise each panel is scaled on its own (shapes stand out,
    magnitudes cannot be compared). ``width`` is the expected width on screen, used to
    make the panels square without empty bands.
    """
    n = len(maps)
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    height_per_row = min(max_panel, (width - 80) // cols) + 30
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles),
                        horizontal_spacing=0.012, vertical_spacing=0.5 / max(rows, 1) / 4 + 0.02)
    data = maps.detach().float().cpu().numpy()
    for i in range(n):
        z = data[i]
        if not shared_scale:
            finite = z[np.isfinite(z)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            z = (z - lo) / (hi - lo) if hi > lo else z * 0
        fig.add_trace(_heatmap(z, titles[i]), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    for i in range(2, n + 1):  # every panel keeps square pixels
        fig.layout[f"yaxis{i}"].scaleanchor = f"x{i}"
    fig.update_layout(
        coloraxis=dict(colorscale=colorscale,
                       colorbar=dict(title="value" if shared_scale else "scaled", thickness=12)),
        height=rows * height_per_row + 50, margin=dict(l=10, r=10, t=40, b=10),
    )
    fig.update_annotations(font_size=12)
    return fig


def layer_strip(panels: Sequence[tuple[str, np.ndarray]], width: int = 1000) -> go.Figure:
    """One small heatmap per layer, left to right, each scaled on its own.

    Args:
        panels: (title, 2-D map) per layer, e.g. the mean over a layer's channels.
        width: the expected width on screen, to fit the height to square panels.
    """
    n = len(panels)
    height = min(200, width // max(n, 1)) + 75
    fig = make_subplots(rows=1, cols=n, subplot_titles=[t for t, _ in panels],
                        horizontal_spacing=0.008)
    for i, (title, z) in enumerate(panels):
        finite = z[np.isfinite(z)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        zn = (z - lo) / (hi - lo) if hi > lo else z * 0
        fig.add_trace(go.Heatmap(
            z=zn, customdata=z, coloraxis="coloraxis", name=title.replace("<br>", " "),
            hovertemplate=title.replace("<br>", " ") + "<br>value %{customdata:.3f}<extra></extra>",
        ), row=1, col=i + 1)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", constrain="domain")
    for i in range(1, n + 1):
        fig.layout["yaxis" if i == 1 else f"yaxis{i}"].scaleanchor = "x" if i == 1 else f"x{i}"
    fig.update_layout(coloraxis=dict(colorscale="Viridis", showscale=False), height=height,
                      margin=dict(l=5, r=5, t=55, b=5))
    fig.update_annotations(font_size=12)
    return fig


# --------------------------------------------------------------------------- charts
def loss_figure(curve: Sequence[tuple[float, float]], train_losses: Sequence[float],
                test_losses: Sequence[float | None], loss_name: str = "MSE",
                epochs: int | None = None) -> go.Figure:
    """Training loss per step (smoothed) and train/test loss per epoch, log scale."""
    fig = go.Figure()
    if curve:
        xs, ys = zip(*curve)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="train (per batch)",
                                 line=dict(color="rgba(99,110,250,0.45)", width=1.5)))
    if train_losses:
        fig.add_trace(go.Scatter(x=list(range(1, len(train_losses) + 1)), y=list(train_losses),
                                 mode="lines+markers", name="train (epoch mean)",
                                 line=dict(color="#636efa", width=3)))
    tests = [(i + 1, v) for i, v in enumerate(test_losses) if v is not None]
    if tests:
        fig.add_trace(go.Scatter(x=[e for e, _ in tests], y=[v for _, v in tests],
                                 mode="lines+markers", name="test",
                                 line=dict(color="#ef553b", width=3)))
    fig.update_layout(
        xaxis_title="epoch", yaxis_title=f"{loss_name} loss (log scale)", yaxis_type="log",
        height=340, margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    if epochs:
        fig.update_xaxes(range=[0, epochs + 0.05])
    return fig


SWEEP_COLOURS = {"model": "#00a67e", "noisy input": "#ef553b",
                 "median 3x3": "#ab63fa", "Gaussian blur (sigma 1)": "#ffa15a"}


def sweep_figure(sweep: Sweep, metric: str = "psnr", current: float | None = None,
                 model_name: str = "model") -> go.Figure:
    """Quality against noise level: the model, the noisy input and classical filters."""
    values = sweep.psnr if metric == "psnr" else sweep.ssim
    fig = go.Figure()
    for name, ys in values.items():
        label = model_name if name == "model" else name
        fig.add_trace(go.Scatter(
            x=sweep.levels, y=ys, mode="lines+markers", name=label,
            line=dict(color=SWEEP_COLOURS.get(name), width=4 if name == "model" else 2,
                      dash=None if name in ("model", "noisy input") else "dot"),
        ))
    if current is not None:
        fig.add_vline(x=current, line=dict(color="grey", dash="dash"),
                      annotation_text="slider", annotation_position="top")
    fig.update_layout(
        xaxis_title=f"{sweep.kind} noise level",
        yaxis_title="PSNR (dB, higher is better)" if metric == "psnr" else "SSIM (1 = identical)",
        height=380, margin=dict(l=10, r=10, t=30, b=10), hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig


def latent_figure(pca: PCA, labels: torch.Tensor, classes: Sequence[str],
                  indices: torch.Tensor | None = None,
                  marks: Sequence[tuple[str, float, float]] = ()) -> go.Figure:
    """The codes' 2-D PCA projection, one colour per class; hover shows label and index.

    Args:
        marks: extra labelled points (name, x, y), e.g. the two interpolation ends.
    """
    pts = pca.points.numpy()
    labels = labels.numpy()
    idx = np.arange(len(pts)) if indices is None else indices.numpy()
    fig = go.Figure()
    for c, name in enumerate(classes):
        keep = labels == c
        if not keep.any():
            continue
        fig.add_trace(go.Scattergl(
            x=pts[keep, 0], y=pts[keep, 1], mode="markers", name=f"{c}: {name}",
            marker=dict(size=6, opacity=0.75), customdata=idx[keep],
            hovertemplate=f"class {c} ({name})<br>test image #%{{customdata}}<extra></extra>",
        ))
    for name, x, y in marks:
        fig.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers+text", text=[name], textposition="top center",
            marker=dict(size=18, symbol="star", color="black", line=dict(color="white", width=1)),
            textfont=dict(size=16), showlegend=False, hoverinfo="skip",
        ))
    e1, e2 = pca.explained
    fig.update_layout(
        xaxis_title=f"PC 1 ({e1:.0%} of the code's variance)",
        yaxis_title=f"PC 2 ({e2:.0%})", height=560, margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(title="class", itemsizing="constant"),
    )
    return fig
