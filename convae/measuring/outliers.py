"""What a model cannot reconstruct: per-image errors, the worst images, and how well the
error tells images the model learned from images it never saw.

An autoencoder reconstructs well only what resembles its training images, so a large
reconstruction error is a classical out-of-distribution signal: Fashion-MNIST through
an MNIST model, noisy pictures, drawings that are not digits. Flagging every image whose
error is above a threshold catches some of them (the detection rate) and wrongly flags
some ordinary test images (the false alarms); the ROC AUC sums that trade-off up over
every threshold in one number (0.5: no better than chance, 1: perfect separation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from convae.base.tensors import eval_mode, to_unit_float
from convae.data.noise import Noise

BATCH = 256  # images per forward pass: large enough to amortise, small enough for cache


def reconstruction_errors(
    model: nn.Module,
    images: torch.Tensor,
    noise: Noise = Noise(),
    seed: int = 0,
    batch_size: int = BATCH,
) -> torch.Tensor:
    """Mean squared error of each image against the model's reconstruction of it.

    Args:
        model: any module mapping (B, C, H, W) in [0, 1] to the same shape.
        images: (N, C, H, W) uint8 or float in [0, 1].
        noise: applied to the images first; the error is then measured against the
            noisy image itself (what the model was given), as a detector would.
        seed: the noise's seed, so the same call gives the same errors.

    Returns:
        (N,) float32 errors, in the images' order.
    """
    generator = torch.Generator().manual_seed(seed)
    out = []
    with torch.inference_mode(), eval_mode(model):
        for i in range(0, len(images), batch_size):
            x = to_unit_float(images[i : i + batch_size])
            if not noise.is_clean:
                x = noise.apply(x, generator=generator)
            x_hat = model(x).float().clamp(0, 1)
            out.append((x_hat - x).pow(2).flatten(1).mean(1))
    return torch.cat(out) if out else torch.empty(0)


def worst(errors: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest errors, largest first (ties: lower index first)."""
    k = max(0, min(int(k), len(errors)))
    order = torch.sort(errors, descending=True, stable=True).indices
    return order[:k]


def roc_auc(known: torch.Tensor, unknown: torch.Tensor) -> float:
    """Area under the ROC curve of "error above a threshold means unknown".

    The probability that an unknown image has a larger error than a known one, ties
    counting one half (the Mann-Whitney U statistic over the product of the counts),
    computed from the ranks of all errors together: O(N log N), no pairs formed.

    Args:
        known: (N,) errors of images like the training data (the negatives).
        unknown: (M,) errors of images the model never learned (the positives).

    Raises:
        ValueError: either set is empty.
    """
    n, m = len(known), len(unknown)
    if n == 0 or m == 0:
        raise ValueError(f"the AUC needs errors of both kinds, got {n} known and {m} unknown")
    scores = torch.cat([known.double().flatten(), unknown.double().flatten()])
    ranks = _average_ranks(scores)
    u = ranks[n:].sum() - m * (m + 1) / 2  # rank sum of the unknown, minus its minimum
    return float(u / (n * m))


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..len(x) in ascending order; tied values share their average rank."""
    values, order = torch.sort(x, stable=True)
    _, inverse, counts = torch.unique_consecutive(values, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()  # last rank of each group of ties
    average = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(x, dtype=torch.float64)
    ranks[order] = average[inverse]
    return ranks


@dataclass(frozen=True)
class Detection:
    """What one threshold does: the share of unknown images flagged and of known ones."""

    threshold: float
    detection_rate: float  # unknown images above the threshold (caught)
    false_alarm_rate: float  # known images above the threshold (wrongly flagged)


def detection_at(threshold: float, known: torch.Tensor, unknown: torch.Tensor) -> Detection:
    """Flag every error strictly above ``threshold``; either set may be empty (rate 0)."""

    def share(e: torch.Tensor) -> float:
        return float((e > threshold).double().mean()) if len(e) else 0.0

    return Detection(float(threshold), share(unknown), share(known))


def threshold_at(known: torch.Tensor, percentile: float) -> float:
    """The error below which ``percentile`` % of the known images lie: flagging above it
    wrongly flags about ``100 - percentile`` % of them."""
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    return float(torch.quantile(known.double(), percentile / 100))


def roc_curve(known: torch.Tensor, unknown: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(false-alarm rates, detection rates), each (K,), for every distinct threshold
    from above the largest error (0, 0) down to below the smallest (1, 1)."""
    if len(known) == 0 or len(unknown) == 0:
        raise ValueError("the ROC curve needs errors of both kinds")
    scores = torch.cat([known.double().flatten(), unknown.double().flatten()])
    is_unknown = torch.cat([torch.zeros(len(known)), torch.ones(len(unknown))]).double()
    order = torch.sort(scores, descending=True, stable=True).indices
    scores, is_unknown = scores[order], is_unknown[order]
    caught = torch.cumsum(is_unknown, 0)
    alarms = torch.cumsum(1 - is_unknown, 0)
    last_of_tie = torch.ones(len(scores), dtype=torch.bool)
    last_of_tie[:-1] = scores[1:] != scores[:-1]  # a threshold cannot split ties
    zero = torch.zeros(1, dtype=torch.float64)
    fpr = torch.cat([zero, alarms[last_of_tie] / len(known)])
    tpr = torch.cat([zero, caught[last_of_tie] / len(unknown)])
    return fpr, tpr


def random_images(n: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """(n, C, H, W) images of uniformly random pixels: nothing any dataset contains."""
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))
