import io
import os
import pickle
import random

import pytest
import torch
from hostile import flip_a_weight_byte

from convae import (
    ARCHITECTURES,
    CheckpointError,
    ModelConfig,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from convae.nn.checkpoint import FORMAT, to_bytes

META = {
    "dataset": "mnist",
    "train_noise": "gaussian:0.5",
    "train": {"epochs": 2, "lr": 0.002, "limit": None},
    "metrics": {"clean": {"mse": 0.0123, "psnr": 19.1, "ssim": 0.81}},
    "history": {"epochs": [{"epoch": 1, "train_loss": 0.05}], "stopped": False},
}


def perturbed(arch="conv-upsample", shape=(1, 28, 28)):
    """A model whose weights differ from any freshly built one."""
    model = build_model(ModelConfig(arch, shape), seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    return model


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


class RunsCode:
    """Unpickling this object runs a shell command (the classic pickle exploit)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_round_trip_keeps_weights_config_and_meta(arch, tmp_path):
    model = perturbed(arch, (3, 32, 32))
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, META)
    ckpt = load_checkpoint(path)
    assert ckpt.config == model.config
    assert_same_weights(ckpt.model, model)
    assert {k: ckpt.meta[k] for k in META} == META
    assert ckpt.meta["latent_size"] == model.latent_size
    assert ckpt.meta["params"] == model.num_params
    assert ckpt.dataset == "mnist"
    assert not ckpt.model.training


def test_loads_from_bytes_and_from_a_file_object():
    model = perturbed()
    data = to_bytes(model, META)
    assert_same_weights(load_checkpoint(data).model, model)
    assert_same_weights(load_checkpoint(io.BytesIO(data)).model, model)


def test_batch_norm_statistics_survive_the_round_trip(tmp_path):
    model = build_model(ModelConfig("conv-bn"), seed=0).train()
    model(torch.rand(8, 1, 28, 28))  # updates running_mean / running_var
    path = save_checkpoint(tmp_path / "bn.pt", model.eval())
    assert_same_weights(load_checkpoint(path).model, model)


def test_save_replaces_an_existing_file(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, perturbed("linear"))
    save_checkpoint(path, perturbed("conv-deep"))
    assert load_checkpoint(path).config.arch == "conv-deep"
    assert os.listdir(tmp_path) == ["m.pt"]


@pytest.mark.parametrize("where", ["fsync", "replace"])
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_keeps_the_previous_file_and_leaves_no_temp_file(
    tmp_path, monkeypatch, where, error
):
    path = save_checkpoint(tmp_path / "m.pt", perturbed("linear"), {"dataset": "mnist"})
    good = path.read_bytes()

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(os, where, fail)
    with pytest.raises(type(error)):
        save_checkpoint(path, perturbed("conv-deep"), {"dataset": "fashion-mnist"})
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["m.pt"]
    assert load_checkpoint(path).config.arch == "linear"


def test_missing_file(tmp_path):
    with pytest.raises(
        CheckpointError, match=r"no checkpoint at .*nope\.pt: the file does not exist"
    ):
        load_checkpoint(tmp_path / "nope.pt")


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="the file does not exist"):
        load_checkpoint(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt is empty: not a convae checkpoint"):
        load_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="is empty"):
        load_checkpoint(b"")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_called_corrupted_not_unsafe(tmp_path, seed):
    path = tmp_path / "random.pt"
    path.write_bytes(random.Random(seed).randbytes(2000))
    with pytest.raises(
        CheckpointError, match=r"cannot load .*random\.pt: it is truncated, corrupted or not a"
    ):
        load_checkpoint(path)


def test_a_flipped_byte_in_the_weights_is_called_corrupted():
    data = flip_a_weight_byte(to_bytes(perturbed(), META))
    torch.load(io.BytesIO(data), weights_only=True)  # torch alone loads it without a word
    with pytest.raises(
        CheckpointError,
        match=r"it is corrupted \(the contents of "
        r"'.*/data/\d+' do not match their checksum\)",
    ):
        load_checkpoint(data)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_checkpoint(keep):
    data = to_bytes(perturbed(), META)
    with pytest.raises(CheckpointError, match="it is truncated, corrupted or not a torch file"):
        load_checkpoint(data[: int(len(data) * keep)])


def test_a_plain_state_dict_is_not_a_convae_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(perturbed().state_dict(), path)
    with pytest.raises(
        CheckpointError, match=r"weights\.pt is a torch file but not a convae checkpoint"
    ):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "writer, message",
    [
        ("torch.save", "contains objects that could run code when loaded, so it was refused"),
        (
            "pickle protocol 2",
            "contains objects that could run code when loaded, so it was refused",
        ),
        # plain pickle.dump (protocol 4+) opens with a FRAME opcode that torch's restricted
        # reader refuses before it reaches the global: truthfully, not a torch file
        ("pickle.dump", "it is truncated, corrupted or not a torch file"),
    ],
    ids=["torch.save", "pickle-protocol-2", "pickle.dump"],
)
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_crafted_to_run_code_is_refused_without_running_it(tmp_path, writer, message):
    marker = tmp_path / "SOMEFILE"
    payload = {"format": FORMAT, "format_version": 1, "model": RunsCode(marker)}
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2 if writer == "pickle protocol 2" else None)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    assert not marker.exists()
    pickle.loads(pickle.dumps(RunsCode(marker)))  # the check above can fail: this runs it
    assert marker.exists()


def test_weights_of_another_architecture_do_not_fit(tmp_path):
    payload = {
        "format": FORMAT,
        "format_version": 1,
        "model": ModelConfig("conv-upsample").to_dict(),
        "state_dict": perturbed("conv-deep").state_dict(),
        "meta": {},
    }
    path = tmp_path / "mixed.pt"
    torch.save(payload, path)
    with pytest.raises(
        CheckpointError,
        match=r"the weights do not fit a conv-upsample model "
        r"for input \(1, 28, 28\)",
    ):
        load_checkpoint(path)


def test_a_checkpoint_without_weights(tmp_path):
    payload = {
        "format": FORMAT,
        "format_version": 1,
        "model": ModelConfig("linear").to_dict(),
        "meta": {},
    }
    torch.save(payload, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=r"has no weights \(state_dict missing\)"):
        load_checkpoint(tmp_path / "x.pt")


@pytest.mark.parametrize(
    "model, message",
    [
        ({"arch": "resnet", "in_shape": [1, 28, 28]}, "unknown architecture 'resnet'"),
        ({"arch": "linear", "in_shape": [1, 28, 28], "colour": 1}, "unknown model settings"),
        ({"arch": "linear", "in_shape": [5, 5, 5]}, "unsupported input shape"),
    ],
)
def test_a_model_convae_cannot_build(tmp_path, model, message):
    torch.save(
        {"format": FORMAT, "format_version": 1, "model": model, "state_dict": {}}, tmp_path / "x.pt"
    )
    with pytest.raises(
        CheckpointError, match=f"describes a model convae cannot build: .*{message}"
    ):
        load_checkpoint(tmp_path / "x.pt")


def test_a_newer_format_version_is_refused(tmp_path):
    torch.save({"format": FORMAT, "format_version": 99}, tmp_path / "x.pt")
    with pytest.raises(
        CheckpointError, match="has checkpoint format version 99; this convae reads"
    ):
        load_checkpoint(tmp_path / "x.pt")


def test_expect_shape_mismatch(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", perturbed())
    assert load_checkpoint(path, expect_shape=(1, 28, 28)).config.in_shape == (1, 28, 28)
    with pytest.raises(
        CheckpointError,
        match=r"is a conv-upsample model for input shape "
        r"\(1, 28, 28\), but \(3, 32, 32\) is needed",
    ):
        load_checkpoint(path, expect_shape=(3, 32, 32))


def test_files_over_max_bytes_are_refused_before_reading(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", perturbed())
    size = path.stat().st_size
    assert load_checkpoint(path, max_bytes=size).config.arch == "conv-upsample"
    with pytest.raises(CheckpointError, match=r"m\.pt is .* MB, over the .* MB limit"):
        load_checkpoint(path, max_bytes=size - 1)
    with pytest.raises(CheckpointError, match="over the .* MB limit for a convae checkpoint"):
        load_checkpoint(path.read_bytes(), max_bytes=size - 1)
    with pytest.raises(CheckpointError, match="over the .* MB limit for a convae checkpoint"):
        load_checkpoint(io.BytesIO(path.read_bytes()), max_bytes=size - 1)
