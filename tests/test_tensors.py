"""convae.base.tensors: the eval-mode context and the uint8 -> float conversion."""

import pytest
import torch
from torch import nn

from convae.base.tensors import eval_mode, to_unit_float


def batch_norm_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_runs_in_eval_and_gives_the_mode_back(training):
    model = batch_norm_model().train(training)
    with eval_mode(model) as inside:
        assert inside is model
        assert not any(m.training for m in model.modules())
    assert all(m.training is training for m in model.modules())


def test_eval_mode_gives_the_mode_back_when_the_block_fails():
    model = batch_norm_model().train()
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training and model[1].training


def test_eval_mode_leaves_batch_norm_statistics_alone():
    model = batch_norm_model().train()
    before = model[1].running_mean.clone()
    with eval_mode(model), torch.no_grad():
        model(torch.rand(4, 1, 8, 8))
    assert torch.equal(model[1].running_mean, before)
    model(torch.rand(4, 1, 8, 8))  # a training-mode pass does move them
    assert not torch.equal(model[1].running_mean, before)


def test_to_unit_float_maps_0_255_to_0_1():
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8)
    out = to_unit_float(pixels)
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.tensor([0.0, 51 / 255, 1.0]))
    assert pixels.tolist() == [0, 51, 255]  # the input is not changed


def test_to_unit_float_passes_floats_through():
    x = torch.rand(2, 3)
    assert to_unit_float(x) is x
    assert torch.equal(to_unit_float(x.double()), x)
