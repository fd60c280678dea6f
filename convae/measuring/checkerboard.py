"""Checkerboard artifacts: the grid a decoder draws on its own, and how strong it is.

A constant code shows the decoder's own pattern (a repeating grid for transposed
convolutions, flat for nearest-upsampling decoders); two measures put a number on a
pattern that repeats every few pixels, in pixel units and as a share of the variation.
"""

from __future__ import annotations

import torch

from convae.base.tensors import eval_mode
from convae.nn.models import Autoencoder


@torch.no_grad()
def decode_constant(model: Autoencoder, value: float = 1.0) -> torch.Tensor:
    """Decode a code whose every value is ``value``: (1, C, H, W).

    A constant code carries no picture, so whatever pattern comes out is the
    decoder's own: flat for nearest-upsampling decoders, a repeating grid for
    transposed convolutions.
    """
    device = next(model.parameters()).device
    with eval_mode(model):
        return model.decode(torch.full((1, *model.code_shape), float(value), device=device)).cpu()


def _interior_and_pattern(
    x: torch.Tensor, period: int, border: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The interior of each image (``border`` trimmed, cut to whole periods) and its
    period x period average pattern: (B, C, h, w) and (B, C, period, period)."""
    if x.ndim != 4:
        raise ValueError(f"expected a batch (B, C, H, W), got shape {tuple(x.shape)}")
    inner = x[..., border : x.shape[-2] - border, border : x.shape[-1] - border].to(dtype)
    h = inner.shape[-2] // period * period
    w = inner.shape[-1] // period * period
    if h == 0 or w == 0:
        raise ValueError(
            f"images of shape {tuple(x.shape[-2:])} are too small for period "
            f"{period} with a {border}-pixel border"
        )
    inner = inner[..., :h, :w]
    tiles = inner.unflatten(-2, (h // period, period)).unflatten(-1, (w // period, period))
    return inner, tiles.mean(dim=(-4, -2))


def checkerboard_strength(x: torch.Tensor, period: int = 4, border: int = 4) -> float:
    """Strength of a pattern that repeats every ``period`` pixels, in pixel units.

    The interior of each image (``border`` pixels trimmed) is averaged over all
    positions with the same (row mod period, column mod period); the standard deviation
    of that period x period average is returned (mean over images and channels). It is
    0 for a flat image and grows with a grid-like texture; image content that does not
    line up with the grid averages out.

    Args:
        x: (B, C, H, W) batch.
    """
    _, pattern = _interior_and_pattern(x, period, border, torch.float32)
    return pattern.flatten(-2).std(-1, unbiased=False).mean().item()


def checkerboard_share(
    x: torch.Tensor, period: int = 4, border: int = 4, flat: float = 1e-6
) -> float:
    """Fraction of an image's variation that repeats every ``period`` pixels, 0 to 1.

    The scale-free companion of :func:`checkerboard_strength`: the variance of the
    period x period average pattern over the variance of the interior, mean over
    images and channels. A pure grid gives 1, a grid-free image ~0. An interior whose
    standard deviation is below ``flat`` (far below one grey level, 1/255) counts as
    flat and gives 0, so rounding noise is never reported as a pattern.
    """
    inner, pattern = _interior_and_pattern(x, period, border, torch.float64)
    total = inner.flatten(-2).var(-1, unbiased=False)
    periodic = pattern.flatten(-2).var(-1, unbiased=False)
    share = torch.where(
        total.sqrt() > flat, periodic / total.clamp(min=1e-300), torch.zeros_like(total)
    )
    return share.clamp(0, 1).mean().item()
