import pytest
import torch

from convae import ARCHITECTURES, ModelConfig, build_model, capture_activations


def hooks_left(model):
    return [name for name, m in model.named_modules() if m._forward_hooks]


@pytest.fixture(params=list(ARCHITECTURES))
def model(request):
    return build_model(ModelConfig(request.param), seed=0)


def test_returns_input_every_layer_code_and_output_in_order(model, images):
    acts = capture_activations(model, images)
    layers = [name for name, _ in model.named_layers()]
    encoder = [n for n in layers if n.startswith("encoder.")]
    decoder = [n for n in layers if n.startswith("decoder.")]
    assert list(acts) == ["input", *encoder, "code", *decoder, "output"]
    assert all(a.shape[0] == len(images) for a in acts.values())
    assert torch.equal(acts["input"], images)


def test_code_is_the_encoding_and_output_the_reconstruction(model, images):
    acts = capture_activations(model, images)
    with torch.no_grad():
        assert torch.equal(acts["code"], model.encode(images))
        assert torch.equal(acts["output"], model(images))
    last_decoder = [n for n, _ in model.named_layers()][-1]
    assert torch.equal(acts[last_decoder], acts["output"])


def test_no_hooks_remain_and_training_mode_is_restored(model, images):
    model.train()
    capture_activations(model, images)
    assert hooks_left(model) == []
    assert all(m.training for m in model.modules())
    model.eval()
    capture_activations(model, images)
    assert not any(m.training for m in model.modules())


def test_hooks_are_removed_even_when_the_forward_pass_fails(model):
    model.train()
    with pytest.raises(RuntimeError):
        capture_activations(model, torch.zeros(2, 3, 28, 28))  # wrong channel count
    assert hooks_left(model) == []
    assert model.training


def test_capturing_runs_in_eval_mode_and_leaves_batch_norm_statistics_alone(images):
    model = build_model(ModelConfig("conv-bn"), seed=0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    capture_activations(model, images)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_activations_are_detached(images):
    model = build_model(ModelConfig("conv-upsample"), seed=0)
    acts = capture_activations(model, images.requires_grad_())
    assert not any(a.requires_grad for a in acts.values())
