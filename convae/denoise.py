"""How well a model denoises, against classical filters that need no training.

A noise sweep measures the model's output, the noisy input itself and each classical
filter at a range of noise levels, so a page can show what learning buys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from .metrics import psnr_per_image, ssim_per_image
from .models import Autoencoder
from .noise import add_noise
from .tensors import eval_mode


def median_filter(x: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Median of each ``size`` x ``size`` neighbourhood, per channel; edges replicated.

    Args:
        x: (B, C, H, W) float batch.
        size: odd window size.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"median filter size must be a positive odd number, got {size}")
    if x.ndim != 4:
        raise ValueError(f"expected a batch (B, C, H, W), got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    pad = size // 2
    padded = F.pad(x.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode="replicate")
    patches = F.unfold(padded, size)  # (B*C, size*size, H*W)
    return patches.median(dim=1).values.reshape(b, c, h, w)


def gaussian_filter(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel covers +-2 sigma)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    k = 2 * math.ceil(2 * sigma) + 1
    return gaussian_blur(x, [k, k], [sigma, sigma])


# Classical denoisers that need no training, to show what learning buys.
CLASSICAL_FILTERS = {
    "median 3x3": lambda x: median_filter(x, 3),
    "Gaussian blur (sigma 1)": lambda x: gaussian_filter(x, 1.0),
}


@dataclass
class Sweep:
    """Mean quality over a set of images at each noise level.

    ``psnr[name]`` and ``ssim[name]`` are lists aligned with ``levels``; the names are
    ``"model"``, ``"noisy input"``, each of :data:`CLASSICAL_FILTERS` and each reference
    model given to :func:`noise_sweep`.
    """

    kind: str
    levels: list[float]
    n_images: int
    seed: int
    psnr: dict[str, list[float]]
    ssim: dict[str, list[float]]


@torch.no_grad()
def noise_sweep(
    model: Autoencoder,
    images: torch.Tensor,
    kind: str,
    levels: list[float],
    seed: int = 0,
    references: dict[str, nn.Module] | None = None,
) -> Sweep:
    """PSNR and SSIM of the model's output, the noisy input and classical filters.

    The same noise draw (``seed``) is scaled at every level, so the curves differ only
    by the level. Every value is compared with the clean image.

    Args:
        model: an autoencoder (left in the mode it was in).
        images: (N, C, H, W) float in [0, 1]: the clean images.
        kind: a noise kind of :mod:`convae.noise`.
        levels: noise levels to try, e.g. ``[0, 0.1, ..., 1]``.
        references: more models that need no training, measured the same way, by name
            (e.g. ``{"PCA-196": pca_for("mnist", 196)}``: projecting on the principal
            subspace is itself a classical denoiser).
    """
    references = references or {}
    names = ["model", "noisy input", *CLASSICAL_FILTERS, *references]
    psnr: dict[str, list[float]] = {n: [] for n in names}
    ssim: dict[str, list[float]] = {n: [] for n in names}
    with eval_mode(model):
        for level in levels:
            noisy = add_noise(images, kind, level, seed=seed)
            outputs = {"model": model(noisy).clamp(0, 1), "noisy input": noisy}
            for name, fn in CLASSICAL_FILTERS.items():
                outputs[name] = fn(noisy)
            for name, reference in references.items():
                outputs[name] = reference(noisy).clamp(0, 1)
            for name, out in outputs.items():
                psnr[name].append(psnr_per_image(out, images).mean().item())
                ssim[name].append(ssim_per_image(out, images).mean().item())
    return Sweep(kind, [float(v) for v in levels], len(images), seed, psnr, ssim)
