"""convae.base.errors.check_choice: one message for every unknown name."""

import pytest

from convae import (
    ConfigError,
    DatasetError,
    ModelConfig,
    TrainConfig,
    architecture_names,
    build_model,
    load_dataset,
)
from convae.base.errors import check_choice


def test_a_known_name_passes():
    check_choice("loss", "bce", ("mse", "bce"))


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        check_choice("loss", "l1", ("mse", "bce"))
    assert str(info.value) == "unknown loss 'l1'; choose one of: mse, bce"


def test_the_error_type_and_a_hint_can_be_chosen():
    with pytest.raises(DatasetError) as info:
        check_choice("dataset", "svhn", {"mnist": 1}, error=DatasetError, hint="(see --help)")
    assert str(info.value) == "unknown dataset 'svhn'; choose one of: mnist (see --help)"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TrainConfig(loss="l1"), "unknown loss 'l1'; choose one of: mse, bce"),
        (
            lambda: TrainConfig(schedule="step"),
            "unknown learning-rate schedule 'step'; choose one of: constant, cosine",
        ),
        (lambda: load_dataset("svhn", train=True), "unknown dataset 'svhn'; choose one of: mnist"),
    ],
)
def test_the_package_speaks_with_one_voice(make, message):
    with pytest.raises((ConfigError, DatasetError), match=message):
        make()


def test_build_model_names_every_architecture():
    with pytest.raises(ConfigError) as info:
        build_model(ModelConfig("resnet"))
    assert str(info.value).endswith("choose one of: " + ", ".join(architecture_names()))
