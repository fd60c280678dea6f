"""The model as code: the plain PyTorch source builds the same network (the weights
load into it and it computes the same outputs), and the loading lines load this exact
model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convae import ARCHITECTURES, ModelConfig, build_model, load_checkpoint, save_checkpoint
from convae.model_code import loading_source, pytorch_source

SHAPES = [(1, 28, 28), (3, 32, 32)]


def run(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<model as code>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_the_plain_pytorch_source_builds_the_same_network(arch, shape):
    model = build_model(ModelConfig(arch, shape), seed=3)
    ns = run(pytorch_source(model))
    plain = ns["model"]
    assert not any(type(m).__module__.startswith("convae") for m in plain.modules())
    plain.load_state_dict(model.state_dict())  # strict: the same names and shapes
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(plain(x), model(x))
        assert torch.equal(plain[0](x), model.encode(x))
    assert ns["code"].shape[1:] == model.code_shape  # its own example runs


def test_each_layer_is_commented_with_its_output_shape_and_the_code_is_marked():
    source = pytorch_source(build_model(ModelConfig("conv-upsample")))
    assert '("conv1", nn.Conv2d(1, 16, kernel_size=(3, 3)' in source
    assert "# -> 16x28x28" in source
    assert '("pool2", nn.MaxPool2d(' in source and "# -> 4x7x7, the code" in source
    assert source.count(", the code") == 1
    assert "1,477 parameters, a 4x7x7 = 196-value code" in source


def test_a_checkpoints_weights_load_into_the_plain_source_with_torch_alone(tmp_path, monkeypatch):
    model = build_model(ModelConfig("conv-bn"), seed=5)
    save_checkpoint(tmp_path / "mine.pt", model, {"dataset": "mnist"})
    monkeypatch.chdir(tmp_path)
    ns = run(pytorch_source(model, weights_file="mine.pt"))
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(ns["model"](x), model(x))  # batch norm's running statistics too


def test_a_layer_that_is_not_pytorchs_own_is_refused():
    class Mine(nn.Module):
        def forward(self, x):
            return x

    model = build_model(ModelConfig("conv-upsample"))
    model.decoder.add_module("mine", Mine())
    with pytest.raises(ValueError, match="Mine is not a PyTorch layer"):
        pytorch_source(model)


# ------------------------------------------------------------------ with convae
@pytest.fixture
def data(data_root, monkeypatch):
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))


def test_the_untrained_lines_rebuild_the_same_random_weights(data):
    model = build_model(ModelConfig("conv-deep"), seed=0)
    ns = run(loading_source(model, "mnist"))
    assert all(
        torch.equal(a, b)
        for a, b in zip(ns["model"].state_dict().values(), model.state_dict().values(), strict=True)
    )
    assert ns["out"].shape == (8, 1, 28, 28)


def test_the_shipped_lines_find_the_checkpoint_by_name(data, monkeypatch):
    from support import REPO

    monkeypatch.setenv("CONVAE_CHECKPOINT_DIR", str(REPO / "checkpoints"))
    shipped = load_checkpoint(REPO / "checkpoints" / "mnist-conv-upsample.pt").model
    source = loading_source(shipped, "mnist", "mnist-conv-upsample.pt", shipped=True)
    assert 'resolve_path("mnist-conv-upsample")' in source
    ns = run(source)
    with torch.no_grad():
        assert torch.equal(ns["out"], shipped(ns["x"]))


def test_the_downloaded_file_lines_load_the_file_next_to_the_script(data, tmp_path, monkeypatch):
    model = build_model(ModelConfig("conv-transpose"), seed=2)
    save_checkpoint(tmp_path / "mnist-conv-transpose-1.pt", model, {"dataset": "mnist"})
    monkeypatch.chdir(tmp_path)
    ns = run(loading_source(model, "mnist", "mnist-conv-transpose-1.pt"))
    assert ns["code"].shape == (8, 4, 7, 7)
    with torch.no_grad():
        assert torch.equal(ns["out"], model(ns["x"]))
