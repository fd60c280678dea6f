"""How well a model denoises, against classical filters that need no training.

The classical filters are the median filter, total variation (Chambolle's algorithm) and
non-local means (both from scikit-image). Total variation and non-local means have a
strength; :mod:`convae.measuring.tuning` chooses it per noise kind and level on training images.
A noise sweep measures the model's output, the noisy input itself and each classical
filter at a range of noise levels, so a page can show what learning buys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
from torch import nn

from convae.data.noise import add_noise
from convae.measuring.metrics import measuring_copy, psnr_per_image, reconstruct, ssim_per_image
from convae.nn.models import Autoencoder

# The noise sweep pages show: the first SWEEP_IMAGES test images, one noise draw scaled to
# each level (0 would be a perfect copy)
SWEEP_IMAGES = 256
SWEEP_SEED = 0
SWEEP_LEVELS = [0.05, *(round(0.1 * i, 2) for i in range(1, 11))]

# Non-local means compares 5x5 patches within 6 pixels: on a 28x28 digit a larger search
# window finds no better patches, only costs time (about 1 ms an image this way).
NLM_PATCH, NLM_DISTANCE = 5, 6


def median_filter(x: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Median of each ``size`` x ``size`` neighbourhood, per channel; edges replicated.

    Args:
        x: (B, C, H, W) float batch.
        size: odd window size.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"median filter size must be a positive odd number, got {size}")
    _check_batch(x)
    b, c, h, w = x.shape
    pad = size // 2
    padded = F.pad(x.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode="replicate")
    patches = F.unfold(padded, size)  # (B*C, size*size, H*W)
    return patches.median(dim=1).values.reshape(b, c, h, w)


def _check_batch(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a batch (B, C, H, W), got shape {tuple(x.shape)}")


def _per_image(x: torch.Tensor, fn: Callable[[np.ndarray, int | None], np.ndarray]) -> torch.Tensor:
    """Apply a scikit-image filter to each image of a (B, C, H, W) batch: it gets an
    (H, W) array for grey images, (H, W, C) with ``channel_axis=-1`` for colour ones."""
    _check_batch(x)
    arrays = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # (B, H, W, C)
    colour = x.shape[1] > 1
    out = [fn(a if colour else a[..., 0], -1 if colour else None) for a in arrays]
    stacked = np.stack(out).reshape(arrays.shape).astype(np.float32)
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous().to(x.device)


def tv_filter(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Total-variation denoising (Chambolle): the image closest to ``x`` whose summed
    gradient is small; a larger ``weight`` gives flatter regions and sharper edges.

    Args:
        x: (B, C, H, W) float batch in [0, 1].
        weight: the strength (> 0).
    """
    if not weight > 0:
        raise ValueError(f"total variation weight must be positive, got {weight}")
    return _per_image(x, lambda a, ch: denoise_tv_chambolle(a, weight=weight, channel_axis=ch))


def nlm_filter(x: torch.Tensor, h: float) -> torch.Tensor:
    """Non-local means: each pixel becomes a weighted mean of pixels whose surrounding
    patches look alike, wherever they are nearby; ``h`` sets how alike (the strength).

    Args:
        x: (B, C, H, W) float batch in [0, 1].
        h: the strength (> 0), in pixel values.
    """
    if not h > 0:
        raise ValueError(f"non-local means h must be positive, got {h}")
    return _per_image(
        x,
        lambda a, ch: denoise_nl_means(
            a,
            h=h,
            patch_size=NLM_PATCH,
            patch_distance=NLM_DISTANCE,
            fast_mode=True,
            channel_axis=ch,
        ),
    )


@dataclass(frozen=True)
class ClassicalFilter:
    """A denoiser that needs no training.

    Attributes:
        name: as pages and tables show it.
        short: a short name, where space is scarce.
        run: ``run(x, strength)`` on a (B, C, H, W) float batch in [0, 1].
        strengths: the grid its strength is chosen from (a single value: it has none).
        about: one line for a reader.
    """

    name: str
    short: str
    run: Callable[[torch.Tensor, float], torch.Tensor]
    strengths: tuple[float, ...]
    about: str

    def __call__(self, x: torch.Tensor, strength: float | None = None) -> torch.Tensor:
        """The filtered batch, clipped to [0, 1]; ``strength`` defaults to the grid's first."""
        return self.run(x, self.strengths[0] if strength is None else strength).clamp(0, 1)


# From gentle to strong, a factor 1.6 apart: the best value at Gaussian noise 0.05 to 1 on
# MNIST lies inside the grid, not at its ends.
STRENGTHS = tuple(round(0.01 * 1.6**i, 4) for i in range(10))

CLASSICAL_FILTERS = {
    f.name: f
    for f in (
        ClassicalFilter(
            "median 3x3",
            "median",
            lambda x, s: median_filter(x, int(s)),
            (3,),
            "each pixel becomes the median of its 3x3 neighbourhood",
        ),
        ClassicalFilter(
            "total variation",
            "TV",
            tv_filter,
            STRENGTHS,
            "the nearest image made of flat regions with sharp edges (Chambolle)",
        ),
        ClassicalFilter(
            "non-local means",
            "NLM",
            nlm_filter,
            STRENGTHS,
            "each pixel averaged with pixels whose neighbourhoods look alike",
        ),
    )
}


class Filtered(nn.Module):
    """A classical filter at one strength as a model (``forward`` filters), so that
    :func:`convae.measuring.metrics.evaluate` measures it exactly as it measures an autoencoder."""

    def __init__(self, name: str, strength: float | None = None) -> None:
        super().__init__()
        self.filter = CLASSICAL_FILTERS[name]
        self.strength = strength

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter(x, self.strength)


@dataclass
class Sweep:
    """Mean quality over a set of images at each noise level.

    ``psnr[name]`` and ``ssim[name]`` are lists aligned with ``levels``; the names are
    ``"model"``, ``"noisy input"``, each reference model given to :func:`noise_sweep`
    and, after :meth:`joined` with a :func:`classical_sweep`, each classical filter.
    """

    kind: str
    levels: list[float]
    n_images: int
    seed: int
    psnr: dict[str, list[float]]
    ssim: dict[str, list[float]]

    def joined(self, other: Sweep) -> Sweep:
        """This sweep's curves and ``other``'s (measured on the same images, noise kind,
        levels and seed; its ``"noisy input"`` is the same curve, so it is left out)."""
        same = (self.kind, self.levels, self.n_images, self.seed)
        if (other.kind, other.levels, other.n_images, other.seed) != same:
            raise ValueError("only sweeps of the same images, noise and levels can be joined")
        extra = [n for n in other.psnr if n not in self.psnr]
        return Sweep(
            *same,
            {**self.psnr, **{n: other.psnr[n] for n in extra}},
            {**self.ssim, **{n: other.ssim[n] for n in extra}},
        )


def _sweep(
    images: torch.Tensor,
    kind: str,
    levels: list[float],
    seed: int,
    denoisers: Mapping[str, Callable[[torch.Tensor, float], torch.Tensor]],
    noisy_at: int = 0,
) -> Sweep:
    """Measure the noisy input and each ``denoisers[name](noisy, level)`` at each level;
    the same noise draw (``seed``) is scaled at every level. The curves keep the order of
    ``denoisers``, with the noisy input's at position ``noisy_at``."""
    names = list(denoisers)
    names.insert(noisy_at, "noisy input")
    psnr: dict[str, list[float]] = {n: [] for n in names}
    ssim: dict[str, list[float]] = {n: [] for n in names}
    for level in levels:
        noisy = add_noise(images, kind, level, seed=seed)
        outputs = {"noisy input": noisy}
        for name, fn in denoisers.items():
            outputs[name] = fn(noisy, level)
        for name, out in outputs.items():
            psnr[name].append(psnr_per_image(out, images).mean().item())
            ssim[name].append(ssim_per_image(out, images).mean().item())
    return Sweep(kind, [float(v) for v in levels], len(images), seed, psnr, ssim)


@torch.no_grad()
def noise_sweep(
    model: Autoencoder,
    images: torch.Tensor,
    kind: str,
    levels: list[float],
    seed: int = 0,
    references: dict[str, nn.Module] | None = None,
) -> Sweep:
    """PSNR and SSIM of the model's output and of the noisy input at each noise level.

    The same noise draw (``seed``) is scaled at every level, so the curves differ only
    by the level. Every value is compared with the clean image. The classical filters
    are measured by :func:`classical_sweep` (they do not depend on the model, so a page
    measures them once) and joined with :meth:`Sweep.joined`.

    Args:
        model: an autoencoder (measured in eval mode; it is not changed).
        images: (N, C, H, W) float in [0, 1]: the clean images.
        kind: a noise kind of :mod:`convae.data.noise`.
        levels: noise levels to try, e.g. ``[0, 0.1, ..., 1]``.
        references: more models that need no training, measured the same way, by name
            (e.g. ``{"PCA-196": pca_for("mnist", 196)}``: projecting on the principal
            subspace is itself a classical denoiser).
    """
    # copies in channels-last layout, run through the fast path, as measuring runs them:
    # the same figures, 1.4-2.2x sooner for the shipped MNIST models (256 images at 11
    # levels, with their PCA; linear, which has no convolution, 0.96x)
    copies = {name: measuring_copy(m) for name, m in {"model": model, **(references or {})}.items()}

    def run(m: nn.Module) -> Callable[[torch.Tensor, float], torch.Tensor]:
        return lambda x, _level: reconstruct(m, x).clamp(0, 1)

    return _sweep(
        images,
        kind,
        levels,
        seed,
        {name: run(m) for name, m in copies.items()},
        noisy_at=1,  # the model, then its input: the two solid lines
    )


@torch.no_grad()
def classical_sweep(
    images: torch.Tensor,
    kind: str,
    levels: list[float],
    strengths: Callable[[float], Mapping[str, float]],
    seed: int = 0,
) -> Sweep:
    """PSNR and SSIM of each classical filter (and the noisy input) at each noise level.

    Args:
        images: (N, C, H, W) float in [0, 1]: the clean images.
        kind: a noise kind of :mod:`convae.data.noise`.
        levels: noise levels to try.
        strengths: the filters' strengths at a level, by name (e.g. chosen on training
            images by :func:`convae.measuring.tuning.tuned_strengths`).
        seed: the noise draw, the same as :func:`noise_sweep`'s to join the two.
    """

    def run(f: ClassicalFilter) -> Callable[[torch.Tensor, float], torch.Tensor]:
        return lambda x, level: f(x, strengths(level)[f.name])

    return _sweep(
        images, kind, levels, seed, {name: run(f) for name, f in CLASSICAL_FILTERS.items()}
    )
