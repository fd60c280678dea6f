"""Autoencoder.code_layer: the layer whose output is the code, for every architecture."""

import pytest
import torch

from convae import ARCHITECTURES, ModelConfig, build_model, capture_activations


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_code_layer_is_the_layer_that_outputs_the_code(arch, shape):
    model = build_model(ModelConfig(arch, shape), seed=0)
    names = [n for n, _ in model.named_layers()]
    assert model.code_layer in names
    assert names.index(model.code_layer) == len(list(model.encoder.children())) - 1
    x = torch.rand(2, *shape)
    acts = capture_activations(model, x)
    with torch.no_grad():
        code = model.encode(x)
    assert acts[model.code_layer].shape[1:] == model.code_shape
    assert torch.equal(acts[model.code_layer], code)


def test_code_layer_names_the_encoders_last_child():
    model = build_model(ModelConfig("conv-upsample"))
    assert model.code_layer == "encoder.pool2"
    assert build_model(ModelConfig("linear")).code_layer == "encoder.relu1"
