import pytest
import torch

from convae import ConfigError, Noise, add_noise

KINDS = ["gaussian", "salt-pepper", "mask"]


@pytest.fixture
def grey():
    """A mid-grey batch: noise is measurable on both sides of every pixel."""
    return torch.full((16, 1, 28, 28), 0.5)  # 12544 pixels


def test_gaussian_noise_has_the_level_as_standard_deviation(grey):
    noisy = add_noise(grey, "gaussian", 0.1, seed=0)
    diff = noisy - grey
    assert diff.std().item() == pytest.approx(0.1, rel=0.03)
    assert diff.mean().item() == pytest.approx(0.0, abs=0.005)


def test_salt_pepper_hits_a_level_fraction_with_pure_black_or_white(grey):
    noisy = add_noise(grey, "salt-pepper", 0.2, seed=0)
    hit = noisy != grey
    assert hit.float().mean().item() == pytest.approx(0.2, abs=0.02)
    values = noisy[hit]
    assert set(values.unique().tolist()) == {0.0, 1.0}
    assert (values == 1).float().mean().item() == pytest.approx(0.5, abs=0.05)


def test_mask_zeroes_a_level_fraction_and_keeps_the_rest(grey):
    noisy = add_noise(grey, "mask", 0.3, seed=0)
    dropped = noisy == 0
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert torch.equal(noisy[~dropped], grey[~dropped])


def test_strong_gaussian_noise_is_clipped_to_the_unit_range(grey):
    noisy = add_noise(grey, "gaussian", 2.0, seed=0)
    assert noisy.min().item() == 0.0 and noisy.max().item() == 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_stay_in_the_unit_range(kind, images):
    noisy = add_noise(images, kind, 0.5, seed=1)
    assert noisy.min() >= 0 and noisy.max() <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_noise_other_seed_other_noise(kind, images):
    a = add_noise(images, kind, 0.3, seed=5)
    b = add_noise(images, kind, 0.3, seed=5)
    c = add_noise(images, kind, 0.3, seed=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("kind", KINDS)
def test_level_zero_returns_the_input_unchanged(kind, images):
    assert torch.equal(add_noise(images, kind, 0.0, seed=0), images)
    assert torch.equal(Noise("none").apply(images), images)


@pytest.mark.parametrize("kind", KINDS)
def test_input_is_not_modified_in_place(kind, images):
    before = images.clone()
    Noise(kind, 0.5).apply(images, seed=0)
    assert torch.equal(images, before)


def test_a_shared_generator_advances_between_calls(images):
    g = torch.Generator().manual_seed(0)
    noise = Noise("gaussian", 0.2)
    assert not torch.equal(noise.apply(images, generator=g), noise.apply(images, generator=g))


def test_integer_images_are_refused():
    with pytest.raises(TypeError, match="float tensor"):
        add_noise(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), "gaussian", 0.1)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("gaussian:0.5", Noise("gaussian", 0.5)),
        ("salt-pepper:0.1", Noise("salt-pepper", 0.1)),
        (" Mask:0.3", Noise("mask", 0.3)),
        ("none", Noise()),
        (None, Noise()),
    ],
)
def test_parse(spec, expected):
    assert Noise.parse(spec) == expected


def test_parsed_clean_noise_is_clean_and_prints_none():
    assert Noise.parse("none").is_clean
    assert str(Noise.parse("none")) == "none"
    assert str(Noise.parse("gaussian:0.5")) == "gaussian:0.5"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("foo", r"bad noise 'foo': write KIND:LEVEL"),
        ("gaussian", r"bad noise 'gaussian': write KIND:LEVEL"),
        ("gaussian:x", r"bad noise 'gaussian:x': write KIND:LEVEL"),
        ("foo:0.5", r"unknown noise kind 'foo'; choose one of: gaussian, salt-pepper, mask"),
        ("gaussian:-1", r"gaussian level must be between 0 and 10(\.0)?, got -1"),
        ("mask:2", r"mask level must be between 0 and 1(\.0)?, got 2"),
        ("salt-pepper:nan", r"salt-pepper level must be between 0 and 1(\.0)?, got nan"),
    ],
)
def test_bad_specs_are_refused_with_a_message(spec, message):
    with pytest.raises(ConfigError, match=message):
        Noise.parse(spec)
