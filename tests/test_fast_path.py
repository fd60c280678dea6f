"""The trainer's fast path computes what the model computes, and trains what it trains."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convae import ARCHITECTURES, ModelConfig, build_model
from convae.nn.fast_path import fast_forward

SHAPES = [(1, 28, 28), (3, 32, 32)]


def _outputs_and_grads(forward, model: nn.Module, x: torch.Tensor):
    model.zero_grad()
    out = forward(x)
    (out * torch.linspace(0, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_same_outputs_and_gradients_as_the_model(arch, shape):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch, shape), seed=0).train()
    model.to(memory_format=torch.channels_last)
    x = torch.rand(6, *shape).contiguous(memory_format=torch.channels_last)
    out, grads = _outputs_and_grads(model, model, x)
    fast_out, fast_grads = _outputs_and_grads(fast_forward(model), model, x)
    torch.testing.assert_close(fast_out, out, atol=2e-6, rtol=1e-5)
    # measured against the largest gradient: a bias before batch norm has none in exact
    # arithmetic, so its two gradients are both rounding noise
    scale = max(grad.abs().max().item() for grad in grads.values())
    for name, grad in grads.items():
        assert (fast_grads[name] - grad).abs().max().item() <= 1e-5 * scale, name


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_same_outputs_when_measuring(arch, shape):
    """Without gradients (measuring) the pooling is rewritten too."""
    model = build_model(ModelConfig(arch, shape), seed=0).eval()
    model.to(memory_format=torch.channels_last)
    x = torch.rand(5, *shape).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(fast_forward(model)(x), model(x), atol=2e-6, rtol=1e-5)


def test_the_measuring_pool_gives_max_pools_values_ties_and_nans_included():
    from convae.nn.fast_path import _pooling

    pool = nn.MaxPool2d(2)
    step = _pooling(pool)
    x = torch.randn(3, 5, 8, 6)
    x[:, :, :4] = 0.25  # four-way ties
    x[0, 1, 2, 3] = float("nan")
    x[1, 2, 5, 5] = float("inf")
    for layout in (torch.channels_last, torch.contiguous_format):  # the second: as it is
        y = x.contiguous(memory_format=layout)
        with torch.no_grad():
            torch.testing.assert_close(step(y), pool(y), rtol=0, atol=0, equal_nan=True)
    odd = torch.randn(2, 3, 7, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.equal(step(odd), pool(odd))  # 7 -> 3: the last row dropped, as it is
    three = nn.MaxPool2d(3)
    assert _pooling(three) is three


def test_rewrites_the_tutorial_decoder_and_falls_back_where_it_must():
    model = build_model(ModelConfig("conv-deep"), seed=0).eval()  # up1 is 4 -> 7: not 2x
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(fast_forward(model)(x), model(x), atol=1e-6, rtol=1e-5)
    # an input whose own gradient is wanted (as saliency needs) is not given the
    # first-layer product, which computes no input gradient
    x.requires_grad_(True)
    model(x).sum().backward()
    expected = x.grad.clone()
    x.grad = None
    fast_forward(model)(x).sum().backward()
    torch.testing.assert_close(x.grad, expected, atol=1e-6, rtol=1e-4)


def test_other_models_are_called_as_they_are():
    plain = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    assert fast_forward(plain) is plain


def test_an_in_place_relu_after_the_first_layer_trains():
    from convae.nn.models import Autoencoder

    encoder = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True))
    decoder = nn.Sequential(nn.Conv2d(4, 1, 3, padding=1), nn.Sigmoid())
    model = Autoencoder(ModelConfig("conv-upsample"), encoder, decoder).train()
    x = torch.rand(2, 1, 28, 28)
    out, grads = _outputs_and_grads(model, model, x)
    fast_out, fast_grads = _outputs_and_grads(fast_forward(model), model, x)
    torch.testing.assert_close(fast_out, out, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(fast_grads, grads, atol=1e-6, rtol=1e-4)


def test_a_model_with_hooks_or_its_own_forward_is_called_as_it_is():
    model = build_model(ModelConfig("conv-upsample"), seed=0)
    seen = []
    handle = model.encoder.relu1.register_forward_hook(lambda m, i, out: seen.append(out.shape))
    assert fast_forward(model) is model  # the hook sees relu1's output, before pooling
    handle.remove()
    assert fast_forward(model) is not model

    class Tweaked(type(model)):
        def forward(self, x):
            return super().forward(x) * 0.5

    tweaked = Tweaked(model.config, model.encoder, model.decoder)
    assert fast_forward(tweaked) is tweaked


def test_a_model_compiled_in_place_is_called_as_it_is():
    """``model.compile()`` makes calling the model run torch's compiled code: the fast
    path would run the layers uncompiled, so it calls the model (nothing is compiled
    until the first call)."""
    model = build_model(ModelConfig("conv-upsample"), seed=0)
    assert fast_forward(model) is not model
    model.compile()
    assert fast_forward(model) is model
