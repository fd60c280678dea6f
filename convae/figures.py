"""Pictures and charts of what a model does: image grids and plotly figures.

Nothing here draws on a screen or imports Streamlit; every function returns a value
(an RGB array or a ``plotly`` figure) that a web page, a notebook or a test can show.
Small images are enlarged with nearest-neighbour so each pixel stays a crisp square
(a 28x28 digit must be readable on a projector).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import torch

from convae.measuring.denoise import Sweep
from convae.measuring.filters import Histogram, LayerFilters, layer_grid
from convae.measuring.latent import PCA


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
# Many small heatmaps are drawn as ONE heatmap trace of tiles separated by blank (NaN)
# gaps: building a plotly figure of 16 subplots takes ~0.2 s on a laptop CPU, a single
# trace ~0.01 s, and a slider must answer well within half a second.


def _scaled(z: np.ndarray) -> np.ndarray:
    """z scaled to [0, 1] by its own finite min and max (flat maps become 0)."""
    finite = z[np.isfinite(z)]
    if not finite.size:
        return z
    lo, hi = float(finite.min()), float(finite.max())
    return (z - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(z), 0.0, z)


def _resize_nearest(z: np.ndarray, size: int) -> np.ndarray:
    """A 2-D map resized to size x size by repeating pixels (any ratio)."""
    rows = np.arange(size) * z.shape[0] // size
    cols = np.arange(size) * z.shape[1] // size
    return z[rows][:, cols]


def _tiles(maps: Sequence[np.ndarray], cols: int, gap: int):
    """Equal-size 2-D maps on one canvas: (z with NaN gaps, (x, y) of each panel's
    top-centre for its title)."""
    n = len(maps)
    h, w = maps[0].shape
    rows = math.ceil(n / cols)
    z = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    tops = []
    for i, m in enumerate(maps):
        r, c = divmod(i, cols)
        y, x = r * (h + gap), c * (w + gap)
        z[y : y + h, x : x + w] = m
        tops.append((x + (w - 1) / 2, y - 0.6))
    return z, tops


def safe_colorscale(name: str) -> list[list]:
    """A plotly colour scale by name, as explicit stops safe to show in Streamlit.

    Streamlit's plotly theme uses colours ``#000001`` to ``#000040`` as placeholders
    that its web client replaces with theme colours, and Inferno and Magma start at
    ``#000004``: their black would turn lavender. Such colours become pure black.
    """
    stops = plotly.colors.get_colorscale(name)
    return [
        [pos, "#000000" if re.fullmatch(r"#0000\d\d", col.lower()) else col] for pos, col in stops
    ]


def _tiled_figure(
    z,
    customdata,
    hovertemplate,
    titles,
    tops,
    colorscale_name,
    colorbar,
    height,
    title_size=12,
    zmin=None,
    zmax=None,
) -> go.Figure:
    annotations = [
        dict(
            x=x,
            y=y,
            text=t,
            showarrow=False,
            xref="x",
            yref="y",
            yanchor="bottom",
            font=dict(size=title_size),
        )
        for t, (x, y) in zip(titles, tops, strict=True)
    ]
    heat = go.Heatmap(
        z=z,
        customdata=customdata,
        hovertemplate=hovertemplate,
        colorscale=safe_colorscale(colorscale_name),
        zmin=zmin,
        zmax=zmax,
        hoverongaps=False,
        showscale=colorbar is not None,
        colorbar=colorbar or {},
        xgap=0,
        ygap=0,
    )
    fig = go.Figure(heat)
    fig.update_layout(
        annotations=annotations,
        height=height,
        margin=dict(l=5, r=5, t=5, b=5),
        xaxis=dict(visible=False, constrain="domain"),
        yaxis=dict(visible=False, autorange="reversed", scaleanchor="x", constrain="domain"),
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def heatmap_grid(
    maps: torch.Tensor,
    titles: Sequence[str],
    cols: int = 8,
    colorscale: str = "Viridis",
    shared_scale: bool = True,
    width: int = 900,
    max_panel: int = 260,
) -> go.Figure:
    """Activation maps (N, H, W) as a grid of heatmaps, one per map, row 0 at the top.

    With ``shared_scale`` all maps share one colour range, so brighter means a larger
    value in every panel; otherwise each panel is scaled on its own (shapes stand out,
    magnitudes cannot be compared). Hovering shows the panel and the raw value.
    ``width`` is the expected width on screen, used to size the figure.
    """
    data = maps.detach().float().cpu().numpy()
    n, h, w = data.shape
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    gap = max(1, w // 7)
    shown = [d if shared_scale else _scaled(d) for d in data]
    z, tops = _tiles(shown, cols, gap)
    raw, _ = _tiles(list(data), cols, gap)
    panel = min(max_panel, (width - 90) / cols)
    colorbar = dict(title="value" if shared_scale else "scaled", thickness=12)
    return _tiled_figure(
        z.astype(np.float32),
        raw.astype(np.float32),
        "row %{y}, col %{x}<br>value %{customdata:.3f}<extra></extra>",
        titles,
        tops,
        colorscale,
        colorbar,
        height=int(rows * panel * (h + gap) / h + 30),
    )


def layer_strip(panels: Sequence[tuple[str, np.ndarray]], width: int = 1000) -> go.Figure:
    """One small heatmap per layer, left to right, each scaled on its own.

    Every map is enlarged (pixels repeated) to the size of the largest, so a 7x7 code
    looks blocky next to the 28x28 input: the loss of detail is visible.

    Args:
        panels: (title, 2-D map) per layer, e.g. the mean over a layer's channels.
        width: the expected width on screen, to size the figure.
    """
    size = max(max(z.shape) for _, z in panels)
    maps = [_resize_nearest(_scaled(np.asarray(z, dtype=float)), size) for _, z in panels]
    raws = [_resize_nearest(np.asarray(z, dtype=float), size) for _, z in panels]
    gap = max(2, size // 6)
    z, tops = _tiles(maps, len(maps), gap)
    raw, _ = _tiles(raws, len(maps), gap)
    panel = (width - 10) / len(maps)
    return _tiled_figure(
        z.astype(np.float32),
        raw.astype(np.float32),
        "value %{customdata:.3f}<extra></extra>",
        [t for t, _ in panels],
        tops,
        "Viridis",
        None,
        height=int(panel * size / (size + gap)) + 50,
        title_size=12,
    )


# --------------------------------------------------------------------------- charts
def loss_figure(
    curve: Sequence[tuple[float, float]],
    train_losses: Sequence[float],
    test_losses: Sequence[float | None],
    loss_name: str = "MSE",
    epochs: int | None = None,
    x_title: str = "epoch",
) -> go.Figure:
    """Training loss per step (smoothed) and train/test loss per epoch, log scale.

    ``curve``'s x is in epochs unless ``x_title`` says otherwise (e.g. "step")."""
    fig = go.Figure()
    if curve:
        xs, ys = zip(*curve, strict=True)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name="train (per batch)",
                line=dict(color="rgba(99,110,250,0.45)", width=1.5),
            )
        )
    if train_losses:
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(train_losses) + 1)),
                y=list(train_losses),
                mode="lines+markers",
                name="train (epoch mean)",
                line=dict(color="#636efa", width=3),
            )
        )
    tests = [(i + 1, v) for i, v in enumerate(test_losses) if v is not None]
    if tests:
        fig.add_trace(
            go.Scatter(
                x=[e for e, _ in tests],
                y=[v for _, v in tests],
                mode="lines+markers",
                name="test",
                line=dict(color="#ef553b", width=3),
            )
        )
    values = [y for t in fig.data for y in t.y if y is not None and y > 0]
    if values:  # ticks at 1, 2, 5 x 10^k: plotly's own log ticks crowd short ranges
        lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
        ticks = [m * 10.0**e for e in range(lo, hi + 1) for m in (1, 2, 5)]
        ticks = [t for t in ticks if min(values) / 2.5 <= t <= max(values) * 2.5]
        fig.update_yaxes(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=f"{loss_name} loss (log scale)",
        yaxis_type="log",
        height=340,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    if epochs:
        fig.update_xaxes(range=[0, epochs + 0.05])
    return fig


SWEEP_COLOURS = {
    "model": "#00a67e",
    "noisy input": "#ef553b",
    "median 3x3": "#ab63fa",
    "total variation": "#ffa15a",
    "non-local means": "#19d3f3",
}
PCA_COLOUR = "#636efa"  # any "PCA-k" reference line


def sweep_figure(
    sweep: Sweep, metric: str = "psnr", current: float | None = None, model_name: str = "model"
) -> go.Figure:
    """Quality against noise level: the model, the noisy input, the classical filters and
    PCA (dotted: what needs no training)."""
    values = sweep.psnr if metric == "psnr" else sweep.ssim
    fig = go.Figure()
    for name, ys in values.items():
        label = model_name if name == "model" else name
        fig.add_trace(
            go.Scatter(
                x=sweep.levels,
                y=ys,
                mode="lines+markers",
                name=label,
                line=dict(
                    color=SWEEP_COLOURS.get(name, PCA_COLOUR if name.startswith("PCA") else None),
                    width=4 if name == "model" else 2,
                    dash=None if name in ("model", "noisy input") else "dot",
                ),
            )
        )
    if current is not None:
        fig.add_vline(
            x=current,
            line=dict(color="grey", dash="dash"),
            annotation_text="slider",
            annotation_position="top",
        )
    fig.update_layout(
        xaxis_title=f"{sweep.kind} noise level",
        yaxis_title="PSNR (dB, higher is better)" if metric == "psnr" else "SSIM (1 = identical)",
        height=380,
        margin=dict(l=10, r=10, t=30, b=10),
        hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig


MAP_GRID = (40, 30)  # columns, rows of the map's invisible click targets
HERE_COLOUR = "#d62728"


def latent_figure(
    pca: PCA,
    labels: torch.Tensor,
    classes: Sequence[str],
    indices: torch.Tensor | None = None,
    marks: Sequence[tuple[str, float, float]] = (),
    path: bool = False,
    extent: tuple[float, float, float, float] | None = None,
    here: tuple[float, float] | None = None,
) -> go.Figure:
    """The codes' 2-D map, one colour per class; hover shows label and index.

    Args:
        marks: extra labelled points (name, x, y), e.g. the two interpolation ends.
        path: join the marks with a dashed line (the straight path between two codes
            projects to a straight line, PCA being linear).
        extent: (x0, x1, y0, y1); if given, the whole box is clickable: an invisible
            grid of points under the scatter (a click event reports only points, and
            empty space has none), and the axes show exactly that box.
        here: a point to mark with a cross (the point last decoded).
    """
    pts = pca.points.numpy()
    label_of = labels.numpy()
    idx = np.arange(len(pts)) if indices is None else indices.numpy()
    fig = go.Figure()
    if extent is not None:
        cols, rows = MAP_GRID
        x0, x1, y0, y1 = extent
        gx, gy = np.meshgrid(np.linspace(x0, x1, cols), np.linspace(y0, y1, rows))
        fig.add_trace(
            go.Scatter(
                x=gx.ravel(),
                y=gy.ravel(),
                mode="markers",
                name="empty space",
                showlegend=False,
                # invisible but still a target: plotly finds hovered points by distance
                marker=dict(size=2, opacity=0),
                unselected=dict(marker=dict(opacity=0)),
                hovertemplate="(%{x:.2f}, %{y:.2f}): click to decode<extra></extra>",
            )
        )
    # WebGL only when SVG would be slow: it draws above SVG and would hide the marks
    scatter = go.Scattergl if len(pts) > 5000 else go.Scatter
    for c, name in enumerate(classes):
        keep = label_of == c
        if not keep.any():
            continue
        fig.add_trace(
            scatter(
                x=pts[keep, 0],
                y=pts[keep, 1],
                mode="markers",
                name=f"{c}: {name}",
                marker=dict(size=6, opacity=0.75),
                # a click selects one point; the others must not fade as plotly's do
                unselected=dict(marker=dict(opacity=0.75)),
                customdata=idx[keep],
                hovertemplate=f"class {c} ({name})<br>test image #%{{customdata}}<extra></extra>",
            )
        )
    if path and len(marks) > 1:
        fig.add_trace(
            scatter(
                x=[m[1] for m in marks],
                y=[m[2] for m in marks],
                mode="lines",
                line=dict(color="black", dash="dash", width=2.5),
                showlegend=False,
                hoverinfo="skip",
            )
        )
    for name, x, y in marks:
        fig.add_trace(
            scatter(
                x=[x],
                y=[y],
                mode="markers+text",
                text=[f"<b>{name}</b>"],
                textposition="top center",
                marker=dict(
                    size=22, symbol="star", color="white", line=dict(color="black", width=2)
                ),
                textfont=dict(size=20, color="black"),
                showlegend=False,
                hoverinfo="skip",
            )
        )
    if here is not None:
        fig.add_trace(
            scatter(
                x=[here[0]],
                y=[here[1]],
                mode="markers",
                marker=dict(size=20, symbol="x-thin-open", color=HERE_COLOUR, line=dict(width=4)),
                showlegend=False,
                hoverinfo="skip",
            )
        )
    e1, e2 = pca.explained
    if pca.projected:
        titles = f"PC 1 ({e1:.0%} of the code's variance)", f"PC 2 ({e2:.0%})"
    else:
        titles = "code value 1", "code value 2"
    fig.update_layout(
        xaxis_title=titles[0],
        yaxis_title=titles[1],
        height=560,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(title="class", itemsizing="constant"),
        hovermode="closest",
    )
    if extent is not None:
        fig.update_xaxes(range=[extent[0], extent[1]])
        fig.update_yaxes(range=[extent[2], extent[3]])
    return fig


@dataclass(frozen=True)
class MapClick:
    """A click on the latent map: where, and the test image if it hit one."""

    x: float
    y: float
    index: int | None = None  # the test image's index, for a click on its point


def map_click(selection: Mapping[str, Any] | None, n_images: int) -> MapClick | None:
    """The first clicked point of a plotly selection event (Streamlit's
    ``event["selection"]``), or None if there is none or it is not a valid point.

    The event comes from the browser, so nothing in it is trusted: coordinates must be
    finite numbers and an index a whole number below ``n_images``.
    """
    try:
        point = (selection or {}).get("points", [])[0]
        x, y = float(point["x"]), float(point["y"])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    index = point.get("customdata") if isinstance(point, Mapping) else None
    if isinstance(index, list) and len(index) == 1:  # plotly may wrap it in a list
        index = index[0]
    if isinstance(index, (int, float)) and not isinstance(index, bool):
        if float(index).is_integer() and 0 <= index < n_images:
            return MapClick(x, y, int(index))
    return MapClick(x, y)


def framed(images: torch.Tensor, mask: torch.Tensor, colour=(0.85, 0.15, 0.15)) -> torch.Tensor:
    """RGB copies of images (B, C, H, W), those where ``mask`` (B,) is set in a
    one-pixel frame of ``colour``: e.g. the tiles of a map where no data lies."""
    rgb = images.expand(-1, 3, -1, -1).clone() if images.shape[1] == 1 else images.clone()
    paint = torch.tensor(colour, dtype=rgb.dtype).view(1, 3, 1)
    m = mask.bool()
    sel = rgb[m]  # a copy (boolean indexing), written back below
    for edge in (sel[:, :, 0, :], sel[:, :, -1, :], sel[:, :, :, 0], sel[:, :, :, -1]):
        edge[:] = paint  # views of the copy: (K, 3, W) or (K, 3, H)
    rgb[m] = sel
    return rgb


# ------------------------------------------------------------------ what fails to fit
ERROR_COLOURS = ("#636efa", "#ef553b", "#00a67e", "#ab63fa")


def error_histogram(
    groups: Sequence[tuple[str, torch.Tensor]],
    lines: Sequence[tuple[str, float]] = (),
    marks: Sequence[tuple[str, float]] = (),
    bins: int = 60,
) -> go.Figure:
    """Histograms of per-image reconstruction errors, one per group, on a log axis.

    Each group's counts are shown as a share of its own images, so a set of 100 and one
    of 10,000 compare. Bins are shared and evenly spaced in log(error): errors span
    decades, and on a linear axis the known images would be one bar at the left.

    Args:
        groups: (name, errors (N,)) per group; empty groups are left out.
        lines: (label, error) drawn as dashed vertical lines, e.g. a threshold.
        marks: (name, error) of single images (e.g. uploads), drawn as dotted lines.
    """
    shown = [(name, e.double().clamp(min=1e-8).numpy()) for name, e in groups if len(e)]
    values = [v for _, e in shown for v in (e.min(), e.max())]
    values += [v for _, v in (*lines, *marks)]
    lo, hi = (min(values), max(values)) if values else (1e-4, 1.0)
    lo, hi = max(lo, 1e-8), max(hi, lo * 1.01, 1e-8)
    edges = np.geomspace(lo / 1.05, hi * 1.05, bins + 1)
    fig = go.Figure()
    top = 1.0
    for i, (name, e) in enumerate(shown):
        counts, _ = np.histogram(e, edges)
        share = np.concatenate([counts, counts[-1:]]) / len(e) * 100
        top = max(top, float(share.max()))
        colour = ERROR_COLOURS[i % len(ERROR_COLOURS)]
        fig.add_trace(
            go.Scatter(
                x=edges,
                y=share,
                mode="lines",
                line=dict(shape="hv", color=colour, width=2),
                fill="tozeroy",
                opacity=0.6,
                name=f"{name} ({len(e):,})",
                hovertemplate="error from %{x:.4f}: %{y:.1f}% of the images<extra></extra>",
            )
        )
    # vertical lines as traces, not layout shapes: plotly places the annotations of
    # shapes on a log axis at the wrong x (the value, not its logarithm)
    for (label, value), style in [
        *((m, dict(color="black", width=2.5, dash="dash")) for m in lines),
        *((m, dict(color="#555", width=1.5, dash="dot")) for m in marks),
    ]:
        fig.add_trace(
            go.Scatter(
                x=[value, value],
                y=[0, top * 1.08],
                mode="lines+text",
                text=["", label],
                textposition="top center",
                line=style,
                showlegend=False,
                hovertemplate=f"{label}: %{{x:.4f}}<extra></extra>",
            )
        )
    fig.update_layout(
        xaxis_title="reconstruction error of an image (MSE, log scale)",
        yaxis_title="% of the group's images",
        xaxis_type="log",
        yaxis_range=[0, top * 1.2],
        height=360,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig


def roc_figure(fpr: torch.Tensor, tpr: torch.Tensor, here: tuple[float, float] | None = None):
    """The ROC curve: detection rate against false-alarm rate over every threshold,
    with the diagonal of guessing and, if given, the threshold chosen now."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="chance",
            line=dict(color="grey", dash="dot"),
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=fpr.numpy(),
            y=tpr.numpy(),
            mode="lines",
            name="reconstruction error",
            line=dict(color=ERROR_COLOURS[0], width=3),
            hovertemplate="false alarms %{x:.1%}<br>detected %{y:.1%}<extra></extra>",
        )
    )
    if here is not None:
        fig.add_trace(
            go.Scatter(
                x=[here[0]],
                y=[here[1]],
                mode="markers",
                name="threshold",
                marker=dict(size=12, color="black"),
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        xaxis_title="false alarms (known images flagged)",
        yaxis_title="detection rate (unknown images flagged)",
        height=360,
        margin=dict(l=10, r=10, t=30, b=10),
        xaxis=dict(range=[0, 1], tickformat=".0%"),
        yaxis=dict(range=[0, 1.02], tickformat=".0%"),
        showlegend=False,
    )
    return fig


# -------------------------------------------------------------------------- filters
def kernel_figure(
    layer: LayerFilters,
    limit: float | None = None,
    width: int = 600,
    max_panel: int = 120,
    max_height: int = 640,
) -> go.Figure:
    """A layer's kernels as one grid of small heatmaps on a colour scale symmetric around
    zero (blue negative, red positive, white zero), one scale for every kernel.

    A layer that reads several channels is a table: one row per feature map it makes,
    one column per channel it reads. One that reads a single channel (the first layer on
    grey images, a linear layer's units) wraps into rows of eight, each titled.

    Args:
        layer: from :func:`convae.measuring.filters.filter_layers`.
        limit: the colour scale runs from -limit to +limit; default the layer's own
            largest absolute weight (pass :func:`convae.measuring.filters.shared_limit` of two
            models to compare them colour for colour).
        width: the expected width on screen, to size the figure.
        max_panel, max_height: the largest kernel, and figure, on screen (pixels).
    """
    maps, cols = layer_grid(layer)
    o, i, kh, kw = layer.kernels.shape
    gap = max(1 if i > 1 else 2, kw // 3)  # titled panels need room for their titles
    z, tops = _tiles(maps, cols, gap)
    z = z.astype(np.float32)  # plotly sends arrays as binary: float32 is half the bytes
    unit = "unit" if layer.kind == "Linear" else "filter"
    if i > 1:  # a table: rows and columns are explained around it, not in 1,000 titles
        tops = []
    titles = [f"{unit} {n}" for n in range(o)] if i == 1 else []
    limit = limit or layer.limit or 1.0
    rows = math.ceil(len(maps) / cols)
    panel = min(max_panel, (width - 90) / cols, max_height / rows)
    return _tiled_figure(
        z,
        None,
        "weight %{z:.3f}<extra></extra>",
        titles,
        tops,
        "RdBu_r",
        dict(title="weight", thickness=12),
        height=int(rows * panel * (kh + gap) / kh + (30 if i == 1 else 10)),
        title_size=11,
        zmin=-limit,
        zmax=limit,
    )


def histogram_figure(hist: Histogram, colours: Sequence[str] = ("#00a67e", "#999999")) -> go.Figure:
    """Weight histograms on shared bins, overlaid (e.g. trained and untrained)."""
    centres = (hist.edges[:-1] + hist.edges[1:]) / 2
    fig = go.Figure()
    for (name, counts), colour in zip(hist.counts.items(), colours, strict=False):
        fig.add_trace(
            go.Bar(
                x=centres,
                y=counts,
                width=float(hist.edges[1] - hist.edges[0]),
                name=name,
                marker=dict(color=colour),
                opacity=0.6,
                hovertemplate="weight %{x:.3f}: %{y} weights<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        barmode="overlay",
        xaxis_title="weight",
        yaxis_title="how many weights",
        height=260,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return fig


def board_figure(
    nicknames: Sequence[str],
    code_sizes: Sequence[int],
    psnrs: Sequence[float],
    ranked: Sequence[bool],
    code_limit: float | None = None,
    psnr_floor: float | None = None,
) -> go.Figure:
    """A challenge's entries: code size (log scale) against PSNR, one point each.

    Args:
        nicknames: shown on hover, HTML-escaped (plotly reads tags in hover text).
        code_sizes, psnrs: each entry's code size and PSNR (dB).
        ranked: whether each entry meets the challenge's rule (coloured) or not (grey).
        code_limit: a vertical line at the rule's code-size limit, if it has one.
        psnr_floor: a horizontal line at the rule's PSNR floor, if it has one.
    """
    fig = go.Figure()
    for meets, name, colour in ((True, "ranked", "#00a67e"), (False, "not ranked", "#aaaaaa")):
        pick = [i for i, r in enumerate(ranked) if r == meets]
        if not pick:
            continue
        fig.add_trace(
            go.Scatter(
                x=[code_sizes[i] for i in pick],
                y=[psnrs[i] for i in pick],
                mode="markers",
                name=name,
                marker=dict(size=13, color=colour, line=dict(width=1, color="#333")),
                hovertext=[html.escape(nicknames[i]) for i in pick],
                hovertemplate="%{hovertext}<br>code %{x} values<br>%{y:.2f} dB<extra></extra>",
            )
        )
    if code_limit is not None:
        fig.add_vline(x=code_limit, line_dash="dash", line_color="#ef553b")
    if psnr_floor is not None:
        fig.add_hline(y=psnr_floor, line_dash="dash", line_color="#ef553b")
    if code_sizes:  # ticks at 1, 2, 5 x 10^k, as in loss_figure
        lo = math.floor(math.log10(max(1, min(code_sizes))))
        hi = math.ceil(math.log10(max(1, max(code_sizes))))
        ticks = [m * 10**e for e in range(lo, hi + 1) for m in (1, 2, 5)]
        fig.update_xaxes(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    fig.update_layout(
        xaxis_title="code size (values, log scale)",
        yaxis_title="PSNR on held-out images (dB)",
        xaxis_type="log",
        height=340,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
    )
    return fig
