"""convae.nn.adam: torch.optim.Adam's arithmetic without torch.optim's Optimizer class."""

import copy
import math
import subprocess
import sys
import textwrap

import pytest
import torch

from convae import ModelConfig, TrainConfig, build_model
from convae.nn.adam import Adam
from convae.nn.trainer import lr_schedule


def _batches(n: int):
    g = torch.Generator().manual_seed(0)
    return [torch.rand(8, 1, 28, 28, generator=g) for _ in range(n)]


@pytest.mark.parametrize("fused", [True, False])
def test_the_weights_are_torch_optim_adams_bit_for_bit_with_a_warmup(fused):
    cfg = TrainConfig(warmup=4, schedule="cosine", adam_betas=(0.9, 0.99))
    schedule = lr_schedule(cfg, 40)
    ours = build_model(ModelConfig("conv-upsample"), seed=0)
    theirs = copy.deepcopy(ours)
    adam = Adam(ours.parameters(), lr=1e-2, betas=(0.9, 0.99), fused=fused, schedule=schedule)
    reference = torch.optim.Adam(theirs.parameters(), lr=1e-2, betas=(0.9, 0.99), fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(reference, schedule)
    rates = []
    for x in _batches(40):
        rates.append(adam.lr)
        assert adam.lr == reference.param_groups[0]["lr"]
        torch.nn.functional.mse_loss(ours(x), x).backward()
        adam.step()
        adam.zero_grad()
        torch.nn.functional.mse_loss(theirs(x), x).backward()
        reference.step()
        reference.zero_grad()
        scheduler.step()
    after_warmup = 1e-2 * (1 + math.cos(math.pi * 4 / 40)) / 2  # the cosine from the start
    assert rates[:5] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2, after_warmup])
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert all(p.grad is None for p in ours.parameters())


def test_a_parameter_without_a_gradient_is_left_as_it_is():
    used, unused = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    frozen = torch.ones(3, requires_grad=False)
    adam = Adam([used, unused, frozen], lr=0.1)
    (used * torch.tensor([1.0, -1.0, 2.0])).sum().backward()
    adam.step()
    assert torch.allclose(used, torch.tensor([0.9, 1.1, 0.9]))  # Adam's first step: lr x sign
    assert torch.equal(unused, torch.ones(3)) and adam.params == [used, unused]
    assert adam.steps_taken == 1


@pytest.mark.slow
def test_training_never_imports_torchs_compiler():
    """The compiler takes 1-2 s to import: a training that compiles nothing pays none."""
    script = textwrap.dedent(
        """
        import sys
        import torch
        from convae import ModelConfig, TrainConfig, build_model, train
        from convae.classroom.stepper import Stepper
        images = (torch.rand(64, 1, 28, 28) * 255).to(torch.uint8)
        model = build_model(ModelConfig("conv-upsample"), seed=0)
        train(model, images, TrainConfig(epochs=1, batch_size=16), test_images=images[:16])
        Stepper(model, images, TrainConfig(batch_size=16)).step()
        print("torch._dynamo" in sys.modules)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
