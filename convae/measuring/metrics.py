"""Reconstruction quality: MSE, PSNR and SSIM, per image and over a test set.

Conventions (so every number convae shows means the same thing):
- images are floats in [0, 1], so PSNR = 10 log10(1 / MSE), capped at 100 dB;
- a set's PSNR and SSIM are means of the per-image values; its MSE is the mean
  per-pixel squared error over the set;
- SSIM is torchmetrics' (Gaussian window 11, sigma 1.5), averaged over channels;
  convae computes the same numbers (to 1e-6) with two matrix products that blur and
  reflect-pad at once, many times faster on a CPU than torchmetrics' grouped 2-D
  convolution (0.2 s for 10,000 MNIST pairs; 0.75 s when it padded first).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from convae.base.tensors import eval_mode, to_unit_float
from convae.data.noise import Noise
from convae.nn.fast_path import MEASURING_BATCH, fast_forward

MIN_MSE = 1e-10  # PSNR of a perfect copy is reported as 100 dB, not infinity
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # torchmetrics' defaults (Wang et al. 2004)
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _check_pair(x_hat: torch.Tensor, x: torch.Tensor) -> None:
    if x_hat.shape != x.shape or x.ndim != 4:
        raise ValueError(
            f"expected two batches of the same shape (B, C, H, W), got {tuple(x_hat.shape)} "
            f"and {tuple(x.shape)}"
        )


def mse_per_image(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x 2 -> (B,) mean squared error of each image."""
    _check_pair(x_hat, x)
    return (x_hat.float() - x.float()).pow(2).flatten(1).mean(1)


def psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1.0 / mse.clamp(min=MIN_MSE))


def psnr_per_image(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x 2 -> (B,) peak signal-to-noise ratio in dB (peak value 1)."""
    return psnr_from_mse(mse_per_image(x_hat, x))


@functools.lru_cache(maxsize=16)
def _gaussian_blur_matrix(n: int) -> torch.Tensor:
    """(n, n): a product with it applies the 11-tap Gaussian along one axis of n pixels,
    reflect-padded as torchmetrics pads (the padding folded into the matrix: the
    image itself is never padded, and each product is a third of the work)."""
    pad = SSIM_WINDOW // 2
    if n <= pad:
        raise ValueError(f"SSIM needs images of at least {pad + 1} pixels a side, got {n}")
    dist = torch.arange((1 - SSIM_WINDOW) / 2, (1 + SSIM_WINDOW) / 2, 1)
    g = torch.exp(-((dist / SSIM_SIGMA) ** 2) / 2)
    g = g / g.sum()
    blur = torch.zeros(n, n)
    for out in range(n):
        for tap in range(SSIM_WINDOW):
            source = abs(out + tap - pad)  # reflected at the first pixel...
            source = min(source, 2 * (n - 1) - source)  # ...and at the last
            blur[source, out] += g[tap]
    return blur


def ssim_per_image(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) x 2 -> (B,) structural similarity, 1 for identical images.

    torchmetrics' SSIM (data range 1, reflect padding, mean over the whole map), with
    the separable Gaussian window applied as two matrix products.
    """
    _check_pair(x_hat, x)
    b, _, h, w = x.shape
    p, t = x_hat.float(), x.float()
    stack = torch.cat((p, t, p * p, t * t, p * t))  # (5B, C, H, W)
    # Along W, then along H, each as one large matrix product (a batch of small ones is
    # several times slower); the maps come out transposed, (W, H), which the mean below
    # does not see.
    blurred = (stack @ _gaussian_blur_matrix(w)).transpose(-1, -2) @ _gaussian_blur_matrix(h)
    mu_p, mu_t, pp, tt, pt = blurred.split(b)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mu_pp, mu_tt, mu_pt = mu_p.pow(2), mu_t.pow(2), mu_p * mu_t
    var_p = torch.clamp(pp - mu_pp, min=0.0)
    var_t = torch.clamp(tt - mu_tt, min=0.0)
    cov = pt - mu_pt
    ssim_map = ((2 * mu_pt + c1) * (2 * cov + c2)) / ((mu_pp + mu_tt + c1) * (var_p + var_t + c2))
    return ssim_map.flatten(1).mean(1)


def image_metrics(x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ``mse``, ``psnr`` and ``ssim`` of a batch, each of shape (B,)."""
    mse = mse_per_image(x_hat, x)
    return {"mse": mse, "psnr": psnr_from_mse(mse), "ssim": ssim_per_image(x_hat, x)}


@torch.no_grad()
def reconstruct(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Run ``model`` in eval mode over a float batch, in chunks; returns float32 on CPU.
    A model without parameters (a classical filter) runs where the batch is. An
    autoencoder runs through :func:`convae.nn.fast_path.fast_forward` (the same outputs)."""
    param = next(model.parameters(), None)
    device = x.device if param is None else param.device
    forward = fast_forward(model)
    with eval_mode(model):
        out = [
            forward(x[i : i + batch_size].to(device)).float().cpu()
            for i in range(0, len(x), batch_size)
        ]
    return torch.cat(out) if out else x.new_empty((0, *x.shape[1:]))


def measuring_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` to measure many images with: its convolutions' weights in
    channels-last layout, which oneDNN computes 2-5x faster on a CPU for convae's models
    (the same outputs within 5e-6). The model itself is left as it is: other threads
    may be using it."""
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


@dataclass
class Evaluation:
    """Mean quality over a set; the ``noisy_*`` fields compare the noisy input itself
    with the clean image (how bad the input was), and are ``None`` for clean input."""

    n: int
    noise: str
    mse: float
    psnr: float
    ssim: float
    noisy_mse: float | None = None
    noisy_psnr: float | None = None
    noisy_ssim: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    noise: Noise = Noise(),
    seed: int = 0,
    batch_size: int = MEASURING_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> Evaluation:
    """Mean MSE, PSNR and SSIM of ``model`` reconstructing ``images``.

    Args:
        model: an autoencoder; put in eval mode for the call and restored after.
        images: (N, C, H, W) uint8 or float in [0, 1]: the clean targets.
        noise: corruption applied to the input (clean by default).
        seed: the noise seed, so the same call gives the same numbers.
        batch_size: images per forward pass (bounds memory).
        on_batch: called with the number of images just measured, after every batch.
    """
    if len(images) == 0:
        raise ValueError("evaluate needs at least one image")
    model = measuring_copy(model)
    generator = torch.Generator().manual_seed(seed)
    sums = {k: 0.0 for k in ("mse", "psnr", "ssim", "noisy_mse", "noisy_psnr", "noisy_ssim")}
    for i in range(0, len(images), batch_size):
        x = to_unit_float(images[i : i + batch_size])
        noisy = noise.apply(x, generator=generator)
        for k, v in image_metrics(reconstruct(model, noisy, batch_size), x).items():
            sums[k] += v.sum().item()
        if not noise.is_clean:
            for k, v in image_metrics(noisy, x).items():
                sums[f"noisy_{k}"] += v.sum().item()
        if on_batch is not None:
            on_batch(len(x))
    n = len(images)
    mean = {k: v / n for k, v in sums.items()}
    noisy_means = (
        {}
        if noise.is_clean
        else {
            "noisy_mse": mean["noisy_mse"],
            "noisy_psnr": mean["noisy_psnr"],
            "noisy_ssim": mean["noisy_ssim"],
        }
    )
    return Evaluation(
        n=n, noise=str(noise), mse=mean["mse"], psnr=mean["psnr"], ssim=mean["ssim"], **noisy_means
    )


def evaluate_model_on(
    model: nn.Module,
    dataset: str,
    noise: Noise = Noise(),
    limit: int | None = None,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
    shape: tuple[int, int, int] | None = None,
) -> Evaluation:
    """:func:`evaluate` on the test split of a named dataset (the first ``limit`` images;
    ``shape``: a folder of images' shape, see :func:`convae.data.datasets.load_dataset`).

    This is what ``python -m convae eval`` reports. :func:`convae.classroom.fitting.fit` measures a
    new model with :func:`evaluate` on the same test images and noise seed, so ``eval``
    reproduces the figures in its checkpoint (and in ``checkpoints/index.json``).
    """
    from convae.data.datasets import load_dataset

    test = load_dataset(dataset, train=False, shape=shape).subset(limit=limit)
    return evaluate(model, test.images, noise, seed=seed, on_batch=on_batch)
