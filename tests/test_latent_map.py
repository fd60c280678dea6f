"""The latent map as a place to decode: any point back to a code and an image, the grid
of decodings, which tiles hold data, and a click on the map read safely."""

import math

import pytest
import torch

from convae import ModelConfig, build_model
from convae.figures import framed, latent_figure, map_click
from convae.measuring.latent import (
    cell_counts,
    code_map,
    decode_points,
    decoding_grid,
    encode_all,
    grid_points,
    map_extent,
    pca_2d,
)


def model(arch="conv-upsample"):
    return build_model(ModelConfig(arch, (1, 28, 28)), seed=0)


def images(n=40, seed=0):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_the_eigen_pca_finds_what_an_svd_of_the_codes_finds():
    g = torch.Generator().manual_seed(3)
    codes = torch.randn(300, 6, generator=g) * torch.tensor([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    codes = codes @ torch.linalg.qr(torch.randn(6, 6, generator=g))[0] + 2
    pca = pca_2d(codes)
    centred = (codes - codes.mean(0)).double()
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    for got, want in zip(pca.components.double(), vh[:2], strict=True):
        assert abs(float(got @ want)) == pytest.approx(1, abs=1e-5)  # same axis, any sign
    var = s.pow(2)
    assert pca.explained == pytest.approx((var[:2] / var.sum()).tolist(), rel=1e-5)


def test_decoding_a_map_point_decodes_the_code_rebuilt_through_the_pca_basis():
    m = model()
    pca = code_map(encode_all(m, images()))
    assert pca.projected
    points = torch.tensor([[0.0, 0.0], [1.5, -2.0], [-30.0, 12.0]])
    rebuilt = points @ pca.components + pca.mean  # (3, 196): mean + x PC1 + y PC2
    with torch.no_grad():
        expected = m.decode(rebuilt.view(3, *m.code_shape))
    assert torch.allclose(decode_points(m, pca, points), expected, atol=1e-6)
    # a code in the map's plane comes back from its point exactly
    in_plane = pca.codes_at(points)
    assert torch.allclose(pca.codes_at(pca.project(in_plane)), in_plane, atol=1e-4)


def test_for_a_two_value_code_the_map_is_the_code_itself():
    m = model("conv-2d")
    assert m.code_shape == (2,)
    codes = encode_all(m, images())
    pca = code_map(codes)
    assert not pca.projected
    assert torch.equal(pca.points, codes)
    assert sum(pca.explained) == pytest.approx(1)
    point = torch.tensor([[0.7, -1.3]])
    with torch.no_grad():
        assert torch.equal(decode_points(m, pca, point), m.decode(point))
    fig = latent_figure(pca, torch.zeros(len(codes), dtype=torch.long), ["x"])
    assert fig.layout.xaxis.title.text == "code value 1"


def test_map_extent_pads_the_box_and_survives_a_flat_axis():
    pts = torch.tensor([[0.0, 5.0], [10.0, 5.0]])
    assert map_extent(pts, pad=0.1) == pytest.approx((-1.0, 11.0, 4.9, 5.1))


def test_grid_points_run_row_by_row_from_the_top_left():
    pts = grid_points((0.0, 3.0, 0.0, 6.0), 3)
    assert pts.shape == (9, 2)
    assert pts[0].tolist() == [0.5, 5.0]  # top-left cell centre
    assert pts[1].tolist() == [1.5, 5.0]  # then to the right
    assert pts[3].tolist() == [0.5, 3.0]  # next row down
    assert pts[-1].tolist() == [2.5, 1.0]
    with pytest.raises(ValueError, match="at least one"):
        grid_points((0, 1, 0, 1), 0)


def test_the_grid_of_decodings_has_one_image_per_tile_in_grid_order():
    m = model()
    pca = code_map(encode_all(m, images()))
    extent = map_extent(pca.points)
    tiles = decoding_grid(m, pca, extent, 5)
    assert tiles.shape == (25, 1, 28, 28)
    assert torch.allclose(tiles, decode_points(m, pca, grid_points(extent, 5)))
    assert not torch.allclose(tiles[0], tiles[-1])  # the corners differ


def test_cell_counts_put_each_point_in_its_tile_and_ignore_outsiders():
    extent = (0.0, 2.0, 0.0, 2.0)  # 2x2 cells: top-left, top-right, bottom-left, ...
    pts = torch.tensor([[0.5, 1.5], [0.2, 1.9], [1.5, 0.5], [5.0, 5.0], [-1.0, 0.5]])
    assert cell_counts(pts, extent, 2).tolist() == [2, 0, 0, 1]


def test_framed_marks_only_the_masked_tiles_with_a_red_border():
    tiles = torch.full((3, 1, 6, 6), 0.5)
    out = framed(tiles, torch.tensor([False, True, False]))
    assert out.shape == (3, 3, 6, 6)
    assert torch.equal(out[0], torch.full((3, 6, 6), 0.5))  # untouched, as grey RGB
    red = torch.tensor([0.85, 0.15, 0.15])
    assert torch.allclose(out[1, :, 0, 3], red) and torch.allclose(out[1, :, 4, 5], red)
    assert torch.equal(out[1, :, 1:-1, 1:-1], torch.full((3, 4, 4), 0.5))  # inside kept
    assert torch.equal(tiles, torch.full((3, 1, 6, 6), 0.5))  # input not changed


def test_the_map_figure_has_a_clickable_grid_under_the_points_and_a_cross():
    pca = code_map(torch.randn(30, 5, generator=torch.Generator().manual_seed(0)))
    extent = map_extent(pca.points)
    fig = latent_figure(pca, torch.arange(30) % 3, "abc", extent=extent, here=(0.5, -0.5))
    grid = fig.data[0]
    assert grid.marker.opacity == 0 and len(grid.x) == 40 * 30  # invisible, but points
    assert min(grid.x) == extent[0] and max(grid.y) == extent[3]  # covers the whole box
    assert [t.name for t in fig.data[1:4]] == ["0: a", "1: b", "2: c"]
    assert list(fig.data[-1].x) == [0.5] and fig.data[-1].marker.symbol == "x-thin-open"
    assert tuple(fig.layout.xaxis.range) == extent[:2]


@pytest.mark.parametrize(
    "selection, expected",
    [
        ({"points": [{"x": 1.5, "y": -2, "customdata": 7}]}, (1.5, -2.0, 7)),
        ({"points": [{"x": 1.5, "y": -2, "customdata": [7]}]}, (1.5, -2.0, 7)),
        ({"points": [{"x": 0.25, "y": 3.0}]}, (0.25, 3.0, None)),  # empty space: no image
        ({"points": [{"x": 1, "y": 2, "customdata": 10}]}, (1.0, 2.0, None)),  # not on map
        ({"points": [{"x": 1, "y": 2, "customdata": -1}]}, (1.0, 2.0, None)),
        ({"points": [{"x": 1, "y": 2, "customdata": 2.5}]}, (1.0, 2.0, None)),
        ({"points": [{"x": 1, "y": 2, "customdata": True}]}, (1.0, 2.0, None)),
        ({"points": [{"x": 1, "y": 2, "customdata": "3"}]}, (1.0, 2.0, None)),
        ({"points": [{"x": "1e3", "y": "2"}]}, (1000.0, 2.0, None)),
    ],
)
def test_a_click_is_read_from_the_selection_event(selection, expected):
    click = map_click(selection, n_images=10)
    assert click is not None and (click.x, click.y, click.index) == expected


@pytest.mark.parametrize(
    "selection",
    [
        None,
        {},
        {"points": []},
        {"points": [{}]},
        {"points": [{"x": 1}]},
        {"points": [{"x": "nan", "y": 0}]},
        {"points": [{"x": math.inf, "y": 0}]},
        {"points": [{"x": [1], "y": 0}]},
        {"points": ["1,2"]},
        {"points": "x"},
        [1, 2],
    ],
)
def test_a_selection_that_is_no_valid_click_is_ignored(selection):
    assert map_click(selection, n_images=10) is None
