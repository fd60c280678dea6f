"""TrainConfig.noise is a Noise: parsed once, saved as its KIND:LEVEL text."""

import pytest

from convae import ConfigError, Noise, TrainConfig


def test_the_default_is_clean_input():
    assert TrainConfig().noise == Noise() and TrainConfig().noise.is_clean


def test_a_noise_is_kept_and_text_is_parsed_into_one():
    assert TrainConfig(noise=Noise("mask", 0.3)).noise == Noise("mask", 0.3)
    assert TrainConfig(noise="Gaussian:0.50").noise == Noise("gaussian", 0.5)
    assert TrainConfig(noise="none").noise == Noise()


def test_bad_noise_text_is_refused_when_the_config_is_made():
    with pytest.raises(ConfigError, match="bad noise 'loud'"):
        TrainConfig(noise="loud")


def test_to_dict_saves_the_noise_as_text_in_its_place():
    settings = TrainConfig(noise=Noise("salt-pepper", 0.1)).to_dict()
    assert settings["noise"] == "salt-pepper:0.1"
    assert list(settings) == [
        "epochs",
        "batch_size",
        "lr",
        "adam_betas",
        "loss",
        "schedule",
        "warmup",
        "noise",
        "seed",
        "limit",
        "channels_last",
        "fast_path",
        "precision",
        "extra",
    ]
    assert TrainConfig(**settings) == TrainConfig(noise=Noise("salt-pepper", 0.1))


@pytest.mark.parametrize("betas", [(0.9,), (0.9, 1.0), (-0.1, 0.9)])
def test_adam_betas_outside_zero_to_one_are_refused(betas):
    with pytest.raises(ConfigError, match="betas"):
        TrainConfig(adam_betas=betas)
