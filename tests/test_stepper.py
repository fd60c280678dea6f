"""convae.classroom.stepper: training one optimizer step at a time, as train() does."""

import dataclasses

import pytest
import torch

from convae import ModelConfig, TrainConfig, build_model, train
from convae.classroom.stepper import FRAME, Stepper, filter_change_images, watched_filter
from convae.measuring.filters import filter_layers


def blobs(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        r, c = torch.randint(4, 20, (2,), generator=g).tolist()
        x[i, 0, r : r + 6, c : c + 6] = 255
    return x


CFG = TrainConfig(batch_size=16, lr=5e-3, precision="float32", channels_last=False)


def assert_trains_as_train_does(stepper: Stepper, data: torch.Tensor, cfg: TrainConfig):
    """The stepper's model, after one pass, has the weights one epoch of train() gives."""
    trained = build_model(ModelConfig("conv-upsample"), seed=0)
    train(trained, data, dataclasses.replace(cfg, epochs=1), device="cpu")
    pairs = zip(stepper.model.state_dict().items(), trained.state_dict().values(), strict=True)
    for (name, a), b in pairs:
        assert torch.allclose(a, b, atol=1e-6), name


def test_stepping_through_one_epoch_gives_the_weights_train_gives():
    model, data = build_model(ModelConfig("conv-upsample"), seed=0), blobs(64)
    stepper = Stepper(model, data, CFG)
    for _ in range(stepper.steps_per_epoch):
        stepper.step()
    assert_trains_as_train_does(stepper, data, CFG)


def test_stepping_warms_up_as_train_does():
    """conv-upsample's own warm-up (50 steps, at most a tenth of the run: 6 of 64)."""
    cfg = dataclasses.replace(CFG, batch_size=1, lr=None, warmup=None)
    model, data = build_model(ModelConfig("conv-upsample"), seed=0), blobs(64)
    stepper = Stepper(model, data, cfg)
    rates = []
    for _ in range(stepper.steps_per_epoch):
        rates.append(stepper._optimizer.lr)
        stepper.step()
    assert rates[:7] == pytest.approx([0.015 * k / 6 for k in range(1, 7)] + [0.015])
    assert_trains_as_train_does(stepper, data, cfg)


def test_a_step_reports_the_batch_its_reconstruction_the_loss_and_the_filter_change():
    model, data = build_model(ModelConfig("conv-upsample"), seed=0), blobs(64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stepper = Stepper(model, data, dataclasses.replace(CFG, noise="gaussian:0.3"))
    step = stepper.step()
    assert step.number == 1 and step.epoch == 1
    assert step.inputs.shape == step.targets.shape == step.outputs.shape == (16, 1, 28, 28)
    assert not torch.equal(step.inputs, step.targets)  # the training noise was applied
    assert 0 <= step.outputs.min() and step.outputs.max() <= 1
    assert step.loss > 0 and stepper.losses == [step.loss]
    assert step.filter_before.shape == (1, 3, 3) == step.filter_after.shape
    assert not torch.equal(step.filter_before, step.filter_after)  # the update moved it
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # a copy


def test_losses_fall_over_steps_and_a_new_pass_reshuffles():
    stepper = Stepper(build_model(ModelConfig("conv-upsample"), seed=0), blobs(64), CFG)
    steps = [stepper.step() for _ in range(40)]
    assert sum(stepper.losses[-5:]) < sum(stepper.losses[:5])
    assert steps[3].epoch == 1 and steps[4].epoch == 2  # 64 images / 16 = 4 steps a pass
    kept = stepper.trained_model()
    assert not kept.training and not any(p.requires_grad for p in kept.parameters())


def test_the_watched_filter_can_be_any_layers_and_is_checked():
    model = build_model(ModelConfig("conv-transpose"), seed=0)
    layers = [f.name for f in filter_layers(model)]
    assert layers[0] == "encoder.conv1" and len(layers) == 4
    last = layers[-1]  # a transposed conv: its filter 0 paints output channel 0
    assert watched_filter(model, last, 0).shape == (16, 2, 2)
    stepper = Stepper(model, blobs(32), CFG)
    stepper.watch(last, 0)
    step = stepper.step()
    assert step.filter_after.shape == (16, 2, 2)
    with pytest.raises(ValueError, match="has no filters to show"):
        stepper.watch("decoder", 0)
    with pytest.raises(ValueError, match="has filters 0-15, not 16"):
        watched_filter(model, "encoder.conv1", 16)
    linear = build_model(ModelConfig("linear"), seed=0)  # a unit's weights: a 28x28 picture
    assert Stepper(linear, blobs(32), CFG).step().filter_after.shape == (1, 28, 28)


def test_filter_pictures_share_a_scale_and_show_the_change_on_its_own():
    before = torch.tensor([[[0.5, -1.0], [0.0, 0.25]]])
    after = before + torch.tensor([[[0.01, 0.0], [-0.02, 0.0]]])
    b, a, d = filter_change_images(before, after)
    assert b.shape == a.shape == d.shape == (1, 1, 4, 4)  # a frame around each kernel
    assert (b[0, 0, 0] == FRAME).all() and (b[0, 0, :, -1] == FRAME).all()
    b, d = b[..., 1:-1, 1:-1], d[..., 1:-1, 1:-1]
    assert b[0, 0, 1, 0] == 0.5 and b[0, 0, 0, 1] == 0.0  # zero is mid-grey, -max black
    assert torch.allclose(d[0, 0], torch.tensor([[0.75, 0.5], [0.0, 0.5]]))
    with pytest.raises(ValueError, match="differ in shape"):
        filter_change_images(before, after[:, :1])
