"""convae's analyses: layer table, filters, noise sweep, PCA, interpolation, checkerboards."""

import math

import pytest
import torch

from convae import ModelConfig, build_model
from convae.measuring.activations import activation_maps
from convae.measuring.checkerboard import checkerboard_strength, decode_constant
from convae.measuring.denoise import CLASSICAL_FILTERS, classical_sweep, median_filter, noise_sweep
from convae.measuring.latent import encode_all, interpolate, pca_2d
from convae.nn.layers import compression, layer_table
from convae.nn.models import ARCHITECTURES


def model(arch="conv-upsample", shape=(1, 28, 28)):
    return build_model(ModelConfig(arch, shape), seed=0)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_layer_table_matches_forward_shapes_and_parameter_count(arch):
    m = model(arch)
    rows = layer_table(m)
    assert [r.name for r in rows] == [n for n, _ in m.named_layers()]
    assert sum(r.params for r in rows) == m.num_params
    assert rows[-1].output_shape == (1, 28, 28)
    last_encoder = [r for r in rows if r.name.startswith("encoder.")][-1]
    assert last_encoder.size == m.latent_size


def test_layer_table_never_touches_the_model_it_describes():
    m = model()
    m.train()
    layer_table(m)
    assert m.training
    assert not any(mod._forward_hooks for mod in m.modules())


def test_layer_table_seed_conv_shapes():
    rows = {r.name: r for r in layer_table(model("conv-upsample"))}
    assert rows["encoder.conv1"].output_shape == (16, 28, 28)
    assert rows["encoder.conv1"].params == 16 * 9 + 16
    assert rows["encoder.pool2"].output_shape == (4, 7, 7)
    assert rows["encoder.pool2"].kind == "MaxPool2d"


def test_compression_ratio_of_the_seed_architectures():
    c = compression(model("conv-upsample"))
    assert (c.code_size, c.input_size, c.code_shape) == (196, 784, (4, 7, 7))
    assert c.ratio == pytest.approx(0.25)
    assert compression(model("linear")).ratio == pytest.approx(32 / 784)
    assert compression(model("conv-deep")).code_size == 128
    assert c.ratio_text == "25%" and compression(model("conv-2d")).ratio_text == "0.3%"


def test_median_filter_removes_isolated_specks_and_keeps_flat_regions():
    x = torch.zeros(2, 1, 9, 9)
    x[0, 0, 4, 4] = 1.0  # one salt pixel
    x[1] = 0.5
    y = median_filter(x, 3)
    assert y.shape == x.shape
    assert y[0].abs().max() == 0
    assert torch.allclose(y[1], torch.full_like(y[1], 0.5))


def test_median_filter_matches_a_direct_computation():
    x = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(0))
    y = median_filter(x, 3)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    for c, i, j in [(0, 0, 0), (1, 3, 4), (2, 5, 6)]:
        window = padded[0, c, i : i + 3, j : j + 3].flatten()
        assert y[0, c, i, j] == window.median()


@pytest.mark.parametrize("size", [0, 2, -1])
def test_median_filter_rejects_even_or_non_positive_sizes(size):
    with pytest.raises(ValueError, match="odd"):
        median_filter(torch.zeros(1, 1, 5, 5), size)


def test_median_filter_rejects_non_batches():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        median_filter(torch.zeros(5, 5))


def test_noise_sweep_shapes_and_sense():
    torch.manual_seed(0)
    images = torch.rand(8, 1, 28, 28)
    m = model()
    m.train()
    sweep = noise_sweep(m, images, "gaussian", [0.1, 0.5], seed=3)
    assert m.training  # mode restored
    assert sweep.levels == [0.1, 0.5] and sweep.n_images == 8
    assert list(sweep.psnr) == ["model", "noisy input"]
    assert all(len(v) == 2 for v in sweep.psnr.values())
    # more noise, a worse noisy input
    assert sweep.psnr["noisy input"][0] > sweep.psnr["noisy input"][1]
    assert sweep.ssim["noisy input"][0] > sweep.ssim["noisy input"][1]
    again = noise_sweep(m, images, "gaussian", [0.1, 0.5], seed=3)
    assert again.psnr == sweep.psnr  # reproducible from the seed
    # the classical filters, measured apart (they do not depend on the model), join it
    gentlest = {name: f.strengths[0] for name, f in CLASSICAL_FILTERS.items()}
    classical = classical_sweep(images, "gaussian", [0.1, 0.5], lambda _: gentlest, seed=3)
    joined = sweep.joined(classical)
    assert list(joined.psnr) == ["model", "noisy input", *CLASSICAL_FILTERS]
    assert joined.psnr["noisy input"] == classical.psnr["noisy input"]  # the same noise
    with pytest.raises(ValueError, match="same images"):
        sweep.joined(classical_sweep(images, "gaussian", [0.1, 0.5], lambda _: gentlest, seed=4))


def test_encode_all_accepts_uint8_and_matches_encode():
    m = model()
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    codes = encode_all(m, images, batch_size=2)
    assert codes.shape == (5, 196)
    with torch.no_grad():
        direct = m.encode(images.float() / 255).flatten(1)
    assert torch.allclose(codes, direct, atol=1e-6)


def test_pca_recovers_the_main_direction_and_explained_variance():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(500, generator=g)
    direction = torch.tensor([3.0, 4.0, 0.0]) / 5
    codes = t[:, None] * direction * 10 + 0.1 * torch.randn(500, 3, generator=g) + 7
    pca = pca_2d(codes)
    assert pca.points.shape == (500, 2)
    assert abs(torch.dot(pca.components[0], direction)) == pytest.approx(1, abs=1e-3)
    assert pca.explained[0] > 0.99 and sum(pca.explained) <= 1 + 1e-6
    assert torch.allclose(pca.components @ pca.components.T, torch.eye(2), atol=1e-5)
    # signs are fixed: the largest loading of each component is positive
    assert (pca.components.gather(1, pca.components.abs().argmax(1, keepdim=True)) > 0).all()
    assert torch.allclose(pca.points, (codes - pca.mean) @ pca.components.T, atol=1e-3)


def test_pca_of_constant_codes_has_no_variance():
    pca = pca_2d(torch.ones(10, 4))
    assert pca.explained == (0.0, 0.0)
    assert torch.allclose(pca.points, torch.zeros(10, 2))


def test_pca_needs_two_codes():
    with pytest.raises(ValueError, match="at least two"):
        pca_2d(torch.ones(1, 4))


def test_interpolate_ends_are_the_reconstructions():
    m = model()
    a, b = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    out = interpolate(m, a, b, [0.0, 0.5, 1.0])
    assert out.shape == (3, 1, 28, 28)
    with torch.no_grad():
        rec = m(torch.stack([a, b]))
    assert torch.allclose(out[0], rec[0], atol=1e-6)
    assert torch.allclose(out[2], rec[1], atol=1e-6)


def test_interpolate_works_for_the_linear_model():
    m = model("linear")
    a, b = torch.rand(2, 1, 28, 28)
    assert interpolate(m, a, b, torch.linspace(0, 1, 4)).shape == (4, 1, 28, 28)


def test_checkerboard_strength_is_zero_for_flat_and_large_for_a_grid():
    flat = torch.full((1, 1, 28, 28), 0.4)
    assert checkerboard_strength(flat) == pytest.approx(0, abs=1e-7)
    grid = torch.zeros(1, 1, 28, 28)
    grid[..., ::2, ::2] = 1.0
    assert checkerboard_strength(grid) == pytest.approx(math.sqrt(3) / 4, rel=1e-4)
    with pytest.raises(ValueError, match="too small"):
        checkerboard_strength(torch.zeros(1, 1, 8, 8))


def test_checkerboard_share_is_scale_free_and_ignores_rounding_noise():
    from convae.measuring.checkerboard import checkerboard_share

    grid = torch.zeros(1, 1, 28, 28)
    grid[..., ::2, ::2] = 1.0
    assert checkerboard_share(grid) == pytest.approx(1.0)
    assert checkerboard_share(grid * 1e-4) == pytest.approx(1.0)  # tiny but pure grid
    assert checkerboard_share(torch.full((1, 1, 28, 28), 0.3)) == 0
    assert checkerboard_share(0.3 + 1e-9 * torch.randn(1, 1, 28, 28)) == 0  # rounding
    g = torch.Generator().manual_seed(0)
    smooth = torch.linspace(0, 1, 28).view(1, 1, 1, 28).expand(1, 1, 28, 28)
    assert checkerboard_share(smooth + 0.0 * torch.rand(1, 1, 28, 28, generator=g)) < 0.1


def test_constant_code_shows_the_transposed_decoder_grid_but_not_upsampling():
    """The Compare page's claim, checked: an untrained transposed-conv decoder prints a
    grid from a blank code; nearest upsampling + convolution prints none."""
    up = decode_constant(model("conv-upsample"))
    tr = decode_constant(model("conv-transpose"))
    assert up.shape == tr.shape == (1, 1, 28, 28)
    assert checkerboard_strength(up) < 1e-6
    assert checkerboard_strength(tr) > 1e-3
    from convae.measuring.checkerboard import checkerboard_share

    assert checkerboard_share(up) == 0 and checkerboard_share(tr) > 0.9


def test_activation_maps_reshapes_vectors_and_keeps_maps():
    maps = torch.rand(4, 7, 7)
    assert activation_maps(maps) is not None and activation_maps(maps).shape == (4, 7, 7)
    vec = activation_maps(torch.arange(32.0))
    assert vec.shape == (1, 6, 6)
    assert vec.flatten()[:32].tolist() == list(range(32))
    assert torch.isnan(vec.flatten()[32:]).all()
    with pytest.raises(ValueError, match="one image"):
        activation_maps(torch.zeros(2, 3, 4, 5))
