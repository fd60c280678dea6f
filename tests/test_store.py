"""convae.classroom.store: saving a user's model under a name typed into the app."""

import json

import pytest

from convae import ConvaeError, ModelConfig, build_model, load_checkpoint
from convae.classroom.store import safe_name, save_user_model


@pytest.mark.parametrize(
    "raw, safe",
    [
        ("my model", "my-model"),
        ("My model (v2).pt", "My-model-v2"),
        ("../../etc/passwd", "etc-passwd"),
        ("a/b\\c", "a-b-c"),
        ("  digits_01  ", "digits_01"),
        ("x" * 100, "x" * 60),
        ("émoji 🧠 name", "moji-name"),
        ("weights.PTH", "weights"),
    ],
)
def test_safe_name_keeps_only_safe_characters(raw, safe):
    assert safe_name(raw) == safe


@pytest.mark.parametrize("raw", ["", "   ", "...", "🧠", ".pt", "/"])
def test_safe_name_refuses_names_with_nothing_left(raw):
    with pytest.raises(ConvaeError, match="not a usable name"):
        safe_name(raw)


def test_save_user_model_writes_a_loadable_checkpoint(tmp_path):
    model = build_model(ModelConfig("conv-upsample"), seed=0)
    path = save_user_model(tmp_path, "class demo!", model, {"dataset": "mnist"})
    assert path == tmp_path / "class-demo.pt"
    ckpt = load_checkpoint(path)
    assert ckpt.dataset == "mnist" and ckpt.config.arch == "conv-upsample"
    assert [p.name for p in tmp_path.iterdir()] == ["class-demo.pt"]  # no temporary left


def test_save_user_model_never_replaces_a_pretrained_file(tmp_path):
    model = build_model(ModelConfig("conv-upsample"), seed=0)
    (tmp_path / "mnist-conv-upsample.pt").write_bytes(b"pretrained")
    (tmp_path / "index.json").write_text(
        json.dumps({"checkpoints": [{"file": "mnist-conv-upsample.pt"}]})
    )
    with pytest.raises(ConvaeError, match="pretrained"):
        save_user_model(tmp_path, "mnist-conv-upsample", model, overwrite=True)
    assert (tmp_path / "mnist-conv-upsample.pt").read_bytes() == b"pretrained"


def test_save_user_model_replaces_only_when_asked(tmp_path):
    model = build_model(ModelConfig("linear"), seed=0)
    save_user_model(tmp_path, "mine", model)
    with pytest.raises(ConvaeError, match="already exists"):
        save_user_model(tmp_path, "mine", model)
    assert save_user_model(tmp_path, "mine", model, overwrite=True).exists()
