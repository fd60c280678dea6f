"""convae's SSIM (banded matrix products) gives torchmetrics' numbers.

convae.measuring.metrics.ssim_per_image replaced torchmetrics' grouped 2-D convolution, the
single largest cost of the app under load (the Denoise page's noise sweep), with two
matrix products (the reflect padding folded into them); every SSIM the app and the CLI
report must stay the same.
"""

import pytest
import torch

from convae.measuring.metrics import ssim_per_image


@pytest.fixture(scope="module")
def reference():
    """torchmetrics' SSIM, imported only by these tests (it imports torchvision, which
    costs every worker a second at collection)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure


def pairs():
    g = torch.Generator().manual_seed(0)
    for shape in [(4, 1, 28, 28), (3, 3, 32, 32), (2, 1, 11, 17), (1, 3, 6, 6)]:
        x = torch.rand(shape, generator=g)
        for level in (0.0, 0.05, 0.5, 2.0):
            y = (x + level * torch.randn(shape, generator=g)).clamp(0, 1)
            yield f"{shape}-{level}", y, x
    x = torch.zeros(2, 1, 28, 28)
    yield "black-vs-black", x, x
    yield "black-vs-white", x, torch.ones_like(x)
    blocks = torch.zeros(2, 1, 28, 28)
    blocks[:, :, 7:21, 7:21] = 1
    yield "square-vs-shifted", blocks, blocks.roll(3, dims=-1)


@pytest.mark.parametrize("name, x_hat, x", list(pairs()), ids=[p[0] for p in pairs()])
def test_same_numbers_as_torchmetrics(reference, name, x_hat, x):
    expected = reference(x_hat, x, data_range=1.0, reduction="none")
    assert torch.allclose(ssim_per_image(x_hat, x), expected, atol=1e-6, rtol=0), name


def test_doubles_and_uint8_scaled_inputs_are_measured_as_float(reference):
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    y = (x + 0.1).clamp(0, 1)
    expected = reference(y.float(), x.float(), data_range=1.0, reduction="none")
    got = ssim_per_image(y, x)
    assert got.dtype == torch.float32 and torch.allclose(got, expected, atol=1e-6)


def test_images_too_small_for_the_window_to_reflect_are_refused():
    x = torch.rand(1, 1, 5, 5)
    with pytest.raises(ValueError, match="at least 6 pixels a side, got 5"):
        ssim_per_image(x, x)
