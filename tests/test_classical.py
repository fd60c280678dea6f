"""The classical denoisers (median, total variation, non-local means) and the choice of
their strength on training images."""

from __future__ import annotations

import pytest
import torch

from convae import Noise, evaluate, load_dataset
from convae.measuring import tuning as tuning_module
from convae.measuring.denoise import (
    CLASSICAL_FILTERS,
    Filtered,
    classical_sweep,
    nlm_filter,
    tv_filter,
)
from convae.measuring.metrics import psnr_per_image
from convae.measuring.tuning import TUNE_IMAGES, choose_strength, classical_outputs, tuned_strengths


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", train=False).floats(slice(0, 40))


@pytest.mark.parametrize("fn", [tv_filter, nlm_filter])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_tv_and_nlm_keep_shape_and_a_flat_image(fn, shape):
    flat = torch.full((2, *shape), 0.4)
    out = fn(flat, 0.1)
    assert out.shape == flat.shape and out.dtype == torch.float32
    assert torch.allclose(out, flat, atol=1e-4)  # nothing to smooth away


@pytest.mark.parametrize("name", ["total variation", "non-local means"])
def test_a_stronger_filter_smooths_more(name, digits):
    noisy = Noise("gaussian", 0.3).apply(digits, seed=1)
    filt = CLASSICAL_FILTERS[name]
    gentle, strong = filt(noisy, filt.strengths[4]), filt(noisy, filt.strengths[-1])

    def roughness(x):  # mean absolute difference between neighbouring pixels
        return (x[..., 1:] - x[..., :-1]).abs().mean().item()

    assert roughness(strong) < roughness(gentle) < roughness(noisy)


def test_colour_images_are_filtered_per_channel_alike():
    """A colour image whose three channels are one grey image filters to that grey
    image's result in each channel (channel_axis is honoured, not treated as space)."""
    grey = Noise("gaussian", 0.2).apply(torch.rand(1, 1, 32, 32), seed=0)
    colour = grey.expand(1, 3, 32, 32).contiguous()
    out = tv_filter(colour, 0.1)
    assert torch.allclose(out[:, :1], tv_filter(grey, 0.1), atol=1e-5)
    assert torch.allclose(out[:, 0], out[:, 2])


@pytest.mark.parametrize("fn", [tv_filter, nlm_filter])
def test_bad_strengths_and_shapes_are_refused(fn):
    with pytest.raises(ValueError, match="positive"):
        fn(torch.zeros(1, 1, 8, 8), 0)
    with pytest.raises(ValueError, match="expected a batch"):
        fn(torch.zeros(8, 8), 0.1)


def test_the_chosen_strength_is_the_best_of_the_grid_on_the_images_given(digits):
    noise = Noise("gaussian", 0.3)
    filt = CLASSICAL_FILTERS["non-local means"]
    chosen = choose_strength(filt, digits, noise, seed=5)
    noisy = noise.apply(digits, seed=5)
    scores = {s: psnr_per_image(filt(noisy, s), digits).mean().item() for s in filt.strengths}
    assert scores[chosen] == max(scores.values())
    # an interior choice: the grid spans the good strengths, not just one end of them
    assert filt.strengths[0] < chosen < filt.strengths[-1]
    assert choose_strength(CLASSICAL_FILTERS["median 3x3"], digits, noise) == 3  # no strength


def test_strengths_are_chosen_on_training_images_never_on_test_images(monkeypatch):
    """The tuning reads only the training split (a request for the test split fails),
    the first TUNE_IMAGES of them, and gives the same strengths every time."""
    tuning_module._tuned.cache_clear()
    seen = []
    real = load_dataset

    def only_training(name, *, train, root=None):
        assert train, "the strengths must not be chosen on test images"
        seen.append(name)
        return real(name, train=True, root=root)

    monkeypatch.setattr("convae.data.datasets.load_dataset", only_training)
    first = tuned_strengths("mnist", Noise("gaussian", 0.5))
    assert seen == ["mnist"] and set(first) == set(CLASSICAL_FILTERS)
    train = real("mnist", train=True).floats(slice(0, TUNE_IMAGES))
    for name, filt in CLASSICAL_FILTERS.items():
        assert first[name] == choose_strength(filt, train, Noise("gaussian", 0.5))
    tuning_module._tuned.cache_clear()
    assert tuned_strengths("mnist", Noise("gaussian", 0.5)) == first  # deterministic
    # a level as a slider sends it is the same level
    assert tuned_strengths("mnist", Noise("gaussian", 0.1 + 0.2 + 0.2)) == first


def test_strengths_grow_with_the_noise_and_generalise_to_test_images(digits):
    strengths = [tuned_strengths("mnist", Noise("gaussian", s)) for s in (0.1, 0.3, 0.5)]
    for name in ("total variation", "non-local means"):
        chosen = [s[name] for s in strengths]
        assert chosen == sorted(chosen) and chosen[0] < chosen[-1], name
    # chosen on training images, they improve test images they never saw
    for level in (0.1, 0.3, 0.5):
        noise = Noise("gaussian", level)
        noisy = noise.apply(digits, seed=0)
        before = psnr_per_image(noisy, digits).mean().item()
        outs = classical_outputs(noisy, "mnist", noise)
        assert psnr_per_image(outs["non-local means"], digits).mean().item() > before + 1


def test_a_filter_is_measured_like_a_model(digits):
    noise = Noise("gaussian", 0.3)
    strength = tuned_strengths("mnist", noise)["total variation"]
    ev = evaluate(Filtered("total variation", strength), digits, noise)
    noisy = noise.apply(digits, generator=torch.Generator().manual_seed(0))
    expected = psnr_per_image(tv_filter(noisy, strength).clamp(0, 1), digits).mean().item()
    assert ev.psnr == pytest.approx(expected, rel=1e-6)
    assert ev.noisy_psnr < ev.psnr


def test_the_classical_sweep_uses_each_levels_strength(digits):
    levels = [0.1, 0.5]
    sweep = classical_sweep(
        digits[:8], "gaussian", levels, lambda lv: tuned_strengths("mnist", Noise("gaussian", lv))
    )
    assert list(sweep.psnr) == ["noisy input", *CLASSICAL_FILTERS]
    noisy = Noise("gaussian", 0.5).apply(digits[:8], seed=0)
    h = tuned_strengths("mnist", Noise("gaussian", 0.5))["non-local means"]
    direct = psnr_per_image(nlm_filter(noisy, h).clamp(0, 1), digits[:8]).mean().item()
    assert sweep.psnr["non-local means"][1] == pytest.approx(direct, rel=1e-6)


def test_without_a_shipped_table_a_page_searches_at_most_once_per_slider_level(
    tmp_path, monkeypatch
):
    """A checkpoint folder with no index: strengths are searched, at the nearest slider
    level, so a level typed into a link (0.123, 0.1234, ...) adds no search of its own."""
    from convae.measuring.tuning import strengths_for

    monkeypatch.setenv("CONVAE_CHECKPOINT_DIR", str(tmp_path))
    tuning_module._tuned.cache_clear()
    first = strengths_for("mnist", Noise("gaussian", 0.123))
    for level in (0.1234, 0.09, 0.1):
        assert strengths_for("mnist", Noise("gaussian", level)) == first
    assert tuning_module._tuned.cache_info().currsize == 1
    assert first == tuned_strengths("mnist", Noise("gaussian", 0.1))
