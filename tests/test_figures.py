"""convae.figures: image grids and plotly figures, checked without a screen."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from convae.data.grids import image_grid, upscale
from convae.figures import (
    fit_scale,
    heatmap_grid,
    latent_figure,
    layer_strip,
    loss_figure,
    normalise,
    sweep_figure,
)
from convae.measuring.denoise import Sweep
from convae.measuring.latent import pca_2d


def test_image_grid_enlarges_with_crisp_pixels_and_white_lines():
    x = torch.zeros(3, 1, 28, 28)
    x[:, :, 0, 0] = 1.0
    grid = image_grid(x, scale=4, padding=2)
    assert grid.dtype == np.uint8 and grid.shape == (28 * 4 + 4, 3 * (28 * 4 + 2) + 2, 3)
    # the first image's top-left pixel became a 4x4 white square, its neighbour stays black
    assert (grid[2:6, 2:6] == 255).all() and (grid[6, 6] == 0).all()
    assert (grid[0] == 255).all()  # padding line


def test_image_grid_handles_colour_and_rows_and_refuses_other_shapes():
    x = torch.rand(6, 3, 32, 32)
    assert image_grid(x, nrow=3, scale=1, padding=0).shape == (64, 96, 3)
    assert image_grid(torch.full((1, 1, 2, 2), 2.0), scale=1, padding=0).max() == 255  # clipped
    with pytest.raises(ValueError, match="expected images"):
        image_grid(torch.rand(2, 28, 28))


@pytest.mark.parametrize(
    ("shape", "nrow", "padding"),
    [((1, 1, 5, 4), None, 2), ((1, 3, 5, 4), 3, 1), ((7, 1, 5, 4), 3, 2), ((4, 3, 6, 6), None, 0)],
)
def test_image_grid_lays_out_tiles_as_torchvisions_make_grid(shape, nrow, padding):
    from torchvision.utils import make_grid

    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    want = make_grid(x, nrow=nrow or shape[0], padding=padding, pad_value=1.0)
    want = want.mul(255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(image_grid(x, nrow=nrow, scale=1, padding=padding), want)


def test_upscale_repeats_pixels():
    x = torch.tensor([[[[0.0, 1.0]]]])
    assert upscale(x, 2).tolist() == [[[[0, 0, 1, 1], [0, 0, 1, 1]]]]


def test_fit_scale_and_normalise():
    assert fit_scale(8, 28, width=960) == 4
    assert fit_scale(100, 28) == 2 and fit_scale(1, 28) == 6
    n = normalise(torch.tensor([[[[2.0, 4.0]]], [[[5.0, 5.0]]]]))
    assert n[0].flatten().tolist() == [0, 1] and n[1].flatten().tolist() == [0, 0]


def test_heatmap_grid_tiles_all_maps_into_one_fast_trace():
    maps = torch.arange(10 * 7 * 7, dtype=torch.float32).view(10, 7, 7)
    fig = heatmap_grid(maps, [f"c{i}" for i in range(10)], cols=4)
    assert isinstance(fig, go.Figure) and len(fig.data) == 1
    z = np.asarray(fig.data[0].z, dtype=float)
    gap = 1
    assert z.shape == (3 * 7 + 2 * gap, 4 * 7 + 3 * gap)  # 3 rows of 4 panels
    assert z[0, 0] == 0 and z[0, 8] == 49  # panel 1 starts after a gap
    assert np.isnan(z[0, 7]) and np.isnan(z[-1, -1])  # gaps and the empty 12th slot
    assert [a.text for a in fig.layout.annotations] == [f"c{i}" for i in range(10)]
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 at the top, like an image
    assert fig.layout.yaxis.scaleanchor == "x"  # square pixels
    own = heatmap_grid(torch.rand(2, 4, 4) * 10, ["a", "b"], shared_scale=False)
    assert np.nanmax(np.asarray(own.data[0].z, dtype=float)) <= 1.0
    assert np.nanmax(np.asarray(own.data[0].customdata, dtype=float)) > 1.0  # raw for hover


def test_layer_strip_enlarges_small_maps_and_keeps_raw_values_for_hover():
    big = np.arange(16.0).reshape(4, 4)
    small = np.array([[5.0, 7.0], [9.0, 11.0]])
    fig = layer_strip([("in<br>1×4×4", big), ("code", small)])
    assert len(fig.data) == 1
    z = np.asarray(fig.data[0].z, dtype=float)
    raw = np.asarray(fig.data[0].customdata, dtype=float)
    assert z.shape == (4, 4 + 2 + 4)
    assert raw[0, 6] == raw[1, 7] == 5.0  # the 2x2 code drawn as 2x2 blocks
    assert np.nanmax(z) == 1.0 and np.nanmin(z) == 0.0  # each panel on its own scale


def test_loss_and_sweep_figures():
    fig = loss_figure([(0.5, 0.2), (1.0, 0.1)], [0.15], [0.12], "MSE", epochs=2)
    assert [t.name for t in fig.data] == ["train (per batch)", "train (epoch mean)", "test"]
    assert fig.layout.yaxis.type == "log"
    assert list(fig.layout.yaxis.ticktext) == ["0.1", "0.2", "0.5"]  # not plotly's 2..9
    assert len(loss_figure([], [], [None]).data) == 0
    sweep = Sweep(
        "gaussian",
        [0.1, 0.2],
        4,
        0,
        {"model": [20, 18], "noisy input": [15, 10]},
        {"model": [0.9, 0.8], "noisy input": [0.5, 0.3]},
    )
    fig = sweep_figure(sweep, "ssim", current=0.15, model_name="mine")
    assert [t.name for t in fig.data] == ["mine", "noisy input"]
    assert list(fig.data[0].y) == [0.9, 0.8]


def test_latent_figure_one_trace_per_present_class_and_marks():
    codes = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(30) % 3
    fig = latent_figure(
        pca_2d(codes),
        labels,
        ["a", "b", "c", "unused"],
        marks=[("A", 0.0, 0.0), ("B", 1.0, 2.0)],
        path=True,
    )
    names = [t.name for t in fig.data]
    assert names[:3] == ["0: a", "1: b", "2: c"] and len(names) == 6
    assert list(fig.data[3].x) == [0.0, 1.0] and fig.data[3].mode == "lines"  # under marks
    assert [t.text[0] for t in fig.data[4:]] == ["<b>A</b>", "<b>B</b>"]
    assert list(fig.data[1].customdata) == list(range(1, 30, 3))  # hover shows the index


def test_safe_colorscale_avoids_streamlits_placeholder_colours():
    from convae.figures import safe_colorscale

    stops = safe_colorscale("Inferno")
    assert stops[0] == [0.0, "#000000"] and len(stops) == 10
    assert all(not c.startswith("#0000") or c == "#000000" for _, c in stops)
    assert safe_colorscale("Viridis")[0][1] == "#440154"
