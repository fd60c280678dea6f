"""What a model cannot reconstruct: per-image errors, the worst images, the ROC AUC and
the detection figures of a threshold, and their histogram."""

import itertools

import pytest
import torch

from convae import ModelConfig, Noise, build_model
from convae.figures import error_histogram, roc_figure
from convae.measuring.metrics import mse_per_image
from convae.measuring.outliers import (
    detection_at,
    random_images,
    reconstruction_errors,
    roc_auc,
    roc_curve,
    threshold_at,
    worst,
)


def model():
    return build_model(ModelConfig("conv-upsample"), seed=0)


def test_errors_are_each_images_mse_against_its_reconstruction():
    m = model()
    x = (torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).byte()
    errors = reconstruction_errors(m, x, batch_size=4)  # batches of 4, 4 and 2
    floats = x.float() / 255
    with torch.no_grad():
        expected = mse_per_image(m(floats), floats)
    assert errors.shape == (10,) and torch.allclose(errors, expected, atol=1e-7)
    assert reconstruction_errors(m, x[:0]).shape == (0,)


def test_with_noise_the_error_is_against_the_noisy_image_the_model_saw():
    m = model()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    noise = Noise("gaussian", 0.4)
    noisy = noise.apply(x, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = mse_per_image(m(noisy), noisy)
    got = reconstruction_errors(m, x, noise, seed=5)
    assert torch.allclose(got, expected, atol=1e-7)
    assert torch.equal(got, reconstruction_errors(m, x, noise, seed=5))  # reproducible
    assert not torch.allclose(got, reconstruction_errors(m, x))


def test_worst_is_largest_first_and_keeps_the_index_order_of_ties():
    e = torch.tensor([0.1, 0.5, 0.3, 0.5, 0.0])
    assert worst(e, 3).tolist() == [1, 3, 2]
    assert worst(e, 99).tolist() == [1, 3, 2, 0, 4]
    assert worst(e, 0).tolist() == []


@pytest.mark.parametrize(
    "known, unknown, auc",
    [
        ([0.1, 0.2, 0.3], [0.4, 0.5], 1.0),  # every unknown image above every known one
        ([0.4, 0.5], [0.1, 0.2, 0.3], 0.0),  # the reverse
        ([0.2, 0.2], [0.2, 0.2, 0.2], 0.5),  # all tied: a coin
        ([1.0, 2.0, 3.0], [2.0, 4.0], 0.75),  # (1 + 0.5 + 0) + 3 = 4.5 of 6 pairs
    ],
)
def test_roc_auc_on_known_cases(known, unknown, auc):
    assert roc_auc(torch.tensor(known), torch.tensor(unknown)) == pytest.approx(auc)


def test_roc_auc_is_the_share_of_pairs_won_counting_ties_half():
    g = torch.Generator().manual_seed(0)
    known = torch.randint(0, 12, (40,), generator=g).float()  # many ties on purpose
    unknown = torch.randint(3, 15, (25,), generator=g).float()
    pairs = [(float(u > k) + 0.5 * float(u == k)) for k, u in itertools.product(known, unknown)]
    assert roc_auc(known, unknown) == pytest.approx(sum(pairs) / len(pairs), abs=1e-12)


def test_roc_auc_needs_both_kinds():
    with pytest.raises(ValueError, match="both kinds"):
        roc_auc(torch.tensor([0.1]), torch.tensor([]))


def test_the_roc_curve_runs_from_nothing_flagged_to_everything_and_its_area_is_the_auc():
    g = torch.Generator().manual_seed(1)
    known = torch.randint(0, 10, (50,), generator=g).float()
    unknown = torch.randint(2, 14, (30,), generator=g).float()
    fpr, tpr = roc_curve(known, unknown)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert (fpr.diff() >= 0).all() and (tpr.diff() >= 0).all()
    assert float(torch.trapezoid(tpr, fpr)) == pytest.approx(roc_auc(known, unknown))


def test_a_threshold_flags_what_is_above_it():
    known = torch.arange(100).float()  # 0..99
    unknown = torch.tensor([50.0, 97.5, 200.0, 300.0])
    t = threshold_at(known, 95)
    assert t == pytest.approx(94.05)
    hit = detection_at(t, known, unknown)
    assert hit.detection_rate == 0.75 and hit.false_alarm_rate == 0.05
    assert detection_at(1000, known, torch.tensor([])).detection_rate == 0.0
    with pytest.raises(ValueError, match="between 0 and 100"):
        threshold_at(known, 101)


def test_random_images_are_reproducible_pictures_of_the_shape():
    a = random_images(3, (1, 28, 28), seed=2)
    assert a.shape == (3, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, random_images(3, (1, 28, 28), seed=2))


def test_the_histogram_shows_each_group_as_shares_on_shared_log_bins():
    known = torch.full((1000,), 0.01)
    unknown = torch.tensor([0.1, 0.2])
    fig = error_histogram(
        [("known", known), ("unknown", unknown), ("none", torch.tensor([]))],
        lines=[("threshold", 0.05)],
        marks=[("me.png", 0.3)],
    )
    groups = [t for t in fig.data if t.fill == "tozeroy"]
    assert [t.name for t in groups] == ["known (1,000)", "unknown (2)"]
    assert list(groups[0].x) == list(groups[1].x)  # the same bins
    for t in groups:  # each a share of its own images (the last value repeats the last bin)
        assert sum(t.y[:-1]) == pytest.approx(100)
    lines = [t for t in fig.data if t.mode == "lines+text"]
    assert [(t.text[1], t.x[0]) for t in lines] == [("threshold", 0.05), ("me.png", 0.3)]
    assert fig.layout.xaxis.type == "log" and max(groups[0].x) > 0.3  # the mark is in view


def test_the_roc_figure_marks_the_chosen_threshold():
    fig = roc_figure(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([0.0, 0.9, 1.0]), (0.5, 0.9))
    assert list(fig.data[1].y) == [0.0, 0.9, 1.0] and list(fig.data[-1].x) == [0.5]
