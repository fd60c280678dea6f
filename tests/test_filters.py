"""Learned filters: each picture-shaped layer's weights as kernels, their colour scale
and their histogram, for every architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convae import ARCHITECTURES, ModelConfig, build_model
from convae.figures import histogram_figure, kernel_figure
from convae.measuring.filters import filter_layers, rgb_kernels, shared_limit, weight_histogram

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)


def model(arch: str, shape=MNIST):
    return build_model(ModelConfig(arch, shape), seed=0)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_conv_layer_is_there_with_out_in_kernel_shapes(arch):
    m = model(arch)
    layers = filter_layers(m)
    convs = [n for n, mod in m.named_layers() if type(mod).__name__.startswith("Conv")]
    if arch == "linear":
        assert [f.name for f in layers] == ["encoder.fc1", "decoder.fc2"]
    else:
        assert [f.name for f in layers] == convs
    for f in layers:
        assert f.kernels.ndim == 4 and not f.rgb
    # data flows: each layer reads what the one before makes
    for a, b in zip(layers, layers[1:], strict=False):
        if arch != "linear":
            assert b.kernels.shape[1] == a.kernels.shape[0]


def test_conv_kernels_are_the_weights_themselves():
    m = model("conv-upsample")
    conv1 = filter_layers(m)[0]
    assert conv1.shape_text == "16 filters of 1x3x3"
    assert torch.equal(conv1.kernels, m.encoder.conv1.weight)


def test_transposed_conv_kernels_are_turned_to_out_by_in():
    m = model("conv-transpose")
    deconv1 = {f.name: f for f in filter_layers(m)}["decoder.deconv1"]
    w = m.decoder.deconv1.weight  # stored (in=4, out=16, 2, 2)
    assert deconv1.kernels.shape == (16, 4, 2, 2)
    assert torch.equal(deconv1.kernels[5, 2], w[2, 5])


def test_a_linear_layer_over_the_image_shows_each_unit_as_a_picture():
    m = model("linear")
    fc1, fc2 = filter_layers(m)
    assert fc1.kernels.shape == (32, 1, 28, 28)
    assert torch.equal(fc1.kernels[3, 0].flatten(), m.encoder.fc1.weight[3])
    assert fc2.kernels.shape == (32, 1, 28, 28)  # what code unit j adds to the output
    assert torch.equal(fc2.kernels[7, 0].flatten(), m.decoder.fc2.weight[:, 7])


def test_on_colour_data_the_first_layer_is_rgb_and_the_others_are_not():
    layers = filter_layers(model("conv-upsample", CIFAR))
    assert [f.rgb for f in layers] == [True, False, False, False]
    assert layers[0].kernels.shape == (16, 3, 3, 3)
    assert layers[-1].kernels.shape == (3, 16, 3, 3)  # writes RGB, reads 16 maps: a table
    assert all(f.rgb for f in filter_layers(model("linear", CIFAR)))


def test_filters_leave_the_model_untouched():
    m = model("conv-bn")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    for f in filter_layers(m):
        f.kernels.zero_()  # a copy: changing it changes nothing in the model
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_the_shared_limit_is_the_largest_weight_of_all():
    trained, untrained = filter_layers(model("conv-upsample"))[0], None
    untrained = filter_layers(build_model(ModelConfig("conv-upsample", MNIST), seed=1))[0]
    limit = shared_limit([trained, untrained])
    assert limit == max(trained.kernels.abs().max(), untrained.kernels.abs().max())
    assert limit >= trained.limit and limit >= untrained.limit
    assert shared_limit([]) == 0.0


def test_rgb_kernels_put_zero_at_mid_grey_and_the_limit_at_the_ends():
    layer = filter_layers(model("conv-upsample", CIFAR))[0]
    pictures = rgb_kernels(layer)
    assert pictures.shape == (16, 3, 3, 3)
    assert pictures.min() >= 0 and pictures.max() <= 1
    flat, w = pictures.flatten(), layer.kernels.flatten()
    assert torch.allclose(flat, 0.5 + w / (2 * layer.limit))
    assert flat[w.abs().argmax()].item() in (0.0, 1.0)
    assert torch.allclose(
        rgb_kernels(layer, 10 * layer.limit), 0.5 + layer.kernels / 20 / layer.limit
    )
    with pytest.raises(ValueError, match="not RGB"):
        rgb_kernels(filter_layers(model("conv-upsample"))[0])


def test_the_histogram_shares_its_bins_and_counts_every_weight():
    a = torch.linspace(-1, 1, 101)
    b = torch.zeros(50)
    hist = weight_histogram({"a": a, "b": b}, bins=21)
    assert len(hist.edges) == 22 and hist.edges[0] == -1 and hist.edges[-1] == 1
    assert hist.counts["a"].sum() == 101 and hist.counts["b"].sum() == 50
    assert hist.counts["b"][10] == 50  # zero falls in the middle bin
    fig = histogram_figure(hist)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert np.array_equal(fig.data[1].y, hist.counts["b"])


def test_the_kernel_figure_is_symmetric_around_zero_on_the_scale_asked_for():
    layer = filter_layers(model("conv-upsample"))[1]  # 4 filters of 16x3x3: a table
    fig = kernel_figure(layer)
    heat = fig.data[0]
    assert heat.zmin == -layer.limit and heat.zmax == layer.limit
    z = np.asarray(heat.z, dtype=float)
    assert np.isfinite(z).sum() == layer.kernels.numel()  # every weight once, gaps blank
    assert np.isclose(np.nanmax(np.abs(z)), layer.limit, rtol=1e-6)
    assert not fig.layout.annotations  # 64 kernels: no titles, the page explains the table
    wide = kernel_figure(layer, limit=5.0)
    assert wide.data[0].zmin == -5.0 and wide.data[0].zmax == 5.0
    first = kernel_figure(filter_layers(model("conv-upsample"))[0])
    assert [a.text for a in first.layout.annotations][:2] == ["filter 0", "filter 1"]
