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
        ("gaussian:0-0.6", Noise("gaussian", 0.6, low=0.0)),
        ("mask: 0.1 - 0.5", Noise("mask", 0.5, low=0.1)),
        ("gaussian:1e-3", Noise("gaussian", 0.001)),  # an exponent is not a range
    ],
)
def test_parse(spec, expected):
    assert Noise.parse(spec) == expected


def test_parsed_clean_noise_is_clean_and_prints_none():
    assert Noise.parse("none").is_clean
    assert str(Noise.parse("none")) == "none"
    assert str(Noise.parse("gaussian:0.5")) == "gaussian:0.5"


def test_a_range_prints_as_it_is_parsed_and_says_so_in_words():
    noise = Noise.parse("gaussian:0-0.6")
    assert noise.is_range and not noise.is_clean
    assert str(noise) == "gaussian:0-0.6" and Noise.parse(str(noise)) == noise
    assert noise.describe() == "gaussian noise of every level from 0 to 0.6"
    assert Noise("gaussian", 0.5).describe() == "gaussian noise of level 0.5"


def test_a_range_gives_every_image_its_own_level_within_it(grey):
    """A blind denoiser's training noise: each image of the batch at its own strength."""
    batch = grey.repeat(8, 1, 1, 1)  # 128 images
    spread = (Noise("gaussian", 0.3, low=0.1).apply(batch, seed=0) - batch).std(dim=(1, 2, 3))
    assert spread.min().item() > 0.09 and spread.max().item() < 0.31
    assert spread.max().item() - spread.min().item() > 0.15  # not one level for all
    assert (spread < 0.2).any() and (spread > 0.2).any()
    dropped = (Noise("mask", 0.5, low=0.1).apply(batch, seed=0) == 0).float().mean(dim=(1, 2, 3))
    assert dropped.min().item() > 0.07 and dropped.max().item() < 0.53
    assert dropped.max().item() - dropped.min().item() > 0.25


def test_a_range_is_reproducible_from_its_seed(images):
    noise = Noise.parse("salt-pepper:0-0.4")
    assert torch.equal(noise.apply(images, seed=3), noise.apply(images, seed=3))
    assert not torch.equal(noise.apply(images, seed=3), noise.apply(images, seed=4))


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
        ("gaussian:0.6-0.1", r"a gaussian level range must go from a lower to a higher level"),
        ("gaussian:0.3-0.3", r"a gaussian level range must go from a lower to a higher level"),
        ("mask:0-2", r"mask level must be between 0 and 1(\.0)?, got 2"),
        ("gaussian:0-", r"bad noise 'gaussian:0-': write KIND:LEVEL.*KIND:LOW-HIGH"),
        ("gaussian:a-0.2", r"bad noise 'gaussian:a-0.2': write KIND:LEVEL"),
    ],
)
def test_bad_specs_are_refused_with_a_message(spec, message):
    with pytest.raises(ConfigError, match=message):
        Noise.parse(spec)
