"""What the app computes about a model: its layers, its code, and how it denoises.

Everything here is plain torch on CPU-sized batches, so the app (and a notebook) can
call it on every slider move: a layer table, the compression ratio, two classical
denoisers to compare against, a noise sweep, a 2-D PCA of the codes, interpolation
between two codes, and a measure of checkerboard artifacts.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from .metrics import psnr_per_image, ssim_per_image
from .models import Autoencoder
from .noise import add_noise


# --------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class LayerRow:
    """One row of a model's layer table."""

    name: str  # e.g. "encoder.conv1"
    kind: str  # the module's class, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # without the batch dimension, e.g. (16, 28, 28)
    params: int

    @property
    def size(self) -> int:
        """Number of values this layer outputs per image."""
        return math.prod(self.output_shape)


@torch.no_grad()
def layer_table(model: Autoencoder) -> list[LayerRow]:
    """Every layer in data-flow order with its output shape and parameter count.

    Shapes are measured by running one blank image through a private copy of the model
    (so they are right for any architecture and input size), which leaves the model
    itself untouched: a model shared between threads never sees a foreign hook.
    """
    model = copy.deepcopy(model)
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    layers = model.named_layers()
    for name, module in layers:
        def hook(_m, _i, out, name=name):
            shapes[name] = tuple(out.shape[1:])
        handles.append(module.register_forward_hook(hook))
    model.eval()
    device = next(model.parameters()).device
    model(torch.zeros(1, *model.config.in_shape, device=device))
    return [LayerRow(name, type(m).__name__, shapes[name], sum(p.numel() for p in m.parameters()))
            for name, m in layers]


@dataclass(frozen=True)
class Compression:
    code_size: int  # values in the code
    input_size: int  # values in one input image
    code_shape: tuple[int, ...]

    @property
    def ratio(self) -> float:
        """Code size as a fraction of the input size (0.25 = the code is a quarter)."""
        return self.code_size / self.input_size


def compression(model: Autoencoder) -> Compression:
    """How much smaller the code is than the input, e.g. 196 / 784 = 25%."""
    return Compression(model.latent_size, math.prod(model.config.in_shape), model.code_shape)


# ------------------------------------------------------------------ classical filters
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


# ----------------------------------------------------------------------- noise sweep
@dataclass
class Sweep:
    """Mean quality over a set of images at each noise level.

    ``psnr[name]`` and ``ssim[name]`` are lists aligned with ``levels``; the names are
    ``"model"``, ``"noisy input"`` and each of :data:`CLASSICAL_FILTERS`.
    """

    kind: str
    levels: list[float]
    n_images: int
    seed: int
    psnr: dict[str, list[float]]
    ssim: dict[str, list[float]]


@torch.no_grad()
def noise_sweep(model: Autoencoder, images: torch.Tensor, kind: str, levels: list[float],
                seed: int = 0) -> Sweep:
    """PSNR and SSIM of the model's output, the noisy input and classical filters.

    The same noise draw (``seed``) is scaled at every level, so the curves differ only
    by the level. Every value is compared with the clean image.

    Args:
        model: an autoencoder (left in the mode it was in).
        images: (N, C, H, W) float in [0, 1]: the clean images.
        kind: a noise kind of :mod:`convae.noise`.
        levels: noise levels to try, e.g. ``[0, 0.1, ..., 1]``.
    """
    names = ["model", "noisy input", *CLASSICAL_FILTERS]
    psnr: dict[str, list[float]] = {n: [] for n in names}
    ssim: dict[str, list[float]] = {n: [] for n in names}
    was_training = model.training
    model.eval()
    try:
        for level in levels:
            noisy = add_noise(images, kind, level, seed=seed)
            outputs = {"model": model(noisy).clamp(0, 1), "noisy input": noisy}
            for name, fn in CLASSICAL_FILTERS.items():
                outputs[name] = fn(noisy)
            for name, out in outputs.items():
                psnr[name].append(psnr_per_image(out, images).mean().item())
                ssim[name].append(ssim_per_image(out, images).mean().item())
    finally:
        model.train(was_training)
    return Sweep(kind, [float(v) for v in levels], len(images), seed, psnr, ssim)


# -------------------------------------------------------------------- latent space
@torch.no_grad()
def encode_all(model: Autoencoder, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Codes of ``images`` (uint8 or float), flattened: (N, latent_size) float32."""
    # 128: a batch's feature maps stay in the CPU cache; with 1000, 5,000 MNIST codes took
    # 2x (conv-upsample) to 2.1x (denoiser) as long on one thread (measured)
    was_training = model.training
    model.eval()
    try:
        out = []
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size]
            x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
            out.append(model.encode(x).flatten(1).float())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, model.latent_size)


@dataclass
class PCA:
    """A 2-D projection: ``points = (codes - mean) @ components.T``."""

    points: torch.Tensor  # (N, 2)
    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (2, D) orthonormal rows
    explained: tuple[float, float]  # fraction of the codes' variance along each axis


def pca_2d(codes: torch.Tensor) -> PCA:
    """Project codes (N, D) on their two directions of largest variance.

    Signs are fixed (largest loading positive) so the picture does not flip between
    runs. A dimension that never varies (dead units) simply gets no variance.
    """
    if codes.ndim != 2 or len(codes) < 2:
        raise ValueError(f"need at least two codes as an (N, D) tensor, got {tuple(codes.shape)}")
    x = codes.double()
    mean = x.mean(0)
    centred = x - mean
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    comps = vh[:2]
    if comps.shape[0] < 2:  # D == 1: pad a zero direction
        comps = torch.cat([comps, torch.zeros(1, x.shape[1], dtype=x.dtype)])
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    total = s.pow(2).sum()
    var = torch.cat([s.pow(2), torch.zeros(2, dtype=s.dtype)])[:2]
    explained = tuple((var / total).tolist()) if total > 0 else (0.0, 0.0)
    return PCA((centred @ comps.T).float(), mean.float(), comps.float(), explained)


@torch.no_grad()
def interpolate(model: Autoencoder, a: torch.Tensor, b: torch.Tensor,
                ts: list[float] | torch.Tensor) -> torch.Tensor:
    """Decode straight-line mixes of the codes of images ``a`` and ``b``.

    Args:
        a, b: single images (C, H, W) in [0, 1].
        ts: mixing weights; 0 gives (the reconstruction of) ``a``, 1 gives ``b``.

    Returns:
        (len(ts), C, H, W) decoded images.
    """
    ts = torch.as_tensor(ts, dtype=torch.float32)
    was_training = model.training
    model.eval()
    try:
        za, zb = model.encode(torch.stack([a, b]))
        t = ts.view(-1, *([1] * za.ndim))
        return model.decode((1 - t) * za + t * zb)
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------- checkerboard
@torch.no_grad()
def decode_constant(model: Autoencoder, value: float = 1.0) -> torch.Tensor:
    """Decode a code whose every value is ``value``: (1, C, H, W).

    A constant code carries no picture, so whatever pattern comes out is the
    decoder's own: flat for nearest-upsampling decoders, a repeating grid for
    transposed convolutions.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        return model.decode(torch.full((1, *model.code_shape), float(value), device=device)).cpu()
    finally:
        model.train(was_training)


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
    if x.ndim != 4:
        raise ValueError(f"expected a batch (B, C, H, W), got shape {tuple(x.shape)}")
    inner = x[..., border:x.shape[-2] - border, border:x.shape[-1] - border].float()
    h = inner.shape[-2] // period * period
    w = inner.shape[-1] // period * period
    if h == 0 or w == 0:
        raise ValueError(f"images of shape {tuple(x.shape[-2:])} are too small for period "
                         f"{period} with a {border}-pixel border")
    tiles = inner[..., :h, :w].unflatten(-2, (h // period, period)).unflatten(-1, (w // period, period))
    pattern = tiles.mean(dim=(-4, -2))  # (B, C, period, period)
    return pattern.flatten(-2).std(-1, unbiased=False).mean().item()


def checkerboard_share(x: torch.Tensor, period: int = 4, border: int = 4,
                       flat: float = 1e-6) -> float:
    """Fraction of an image's variation that repeats every ``period`` pixels, 0 to 1.

    The scale-free companion of :func:`checkerboard_strength`: the variance of the
    period x period average pattern over the variance of the interior, mean over
    images and channels. A pure grid gives 1, a grid-free image ~0. An interior whose
    standard deviation is below ``flat`` (far below one grey level, 1/255) counts as
    flat and gives 0, so rounding noise is never reported as a pattern.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch (B, C, H, W), got shape {tuple(x.shape)}")
    inner = x[..., border:x.shape[-2] - border, border:x.shape[-1] - border].double()
    h = inner.shape[-2] // period * period
    w = inner.shape[-1] // period * period
    if h == 0 or w == 0:
        raise ValueError(f"images of shape {tuple(x.shape[-2:])} are too small for period "
                         f"{period} with a {border}-pixel border")
    inner = inner[..., :h, :w]
    tiles = inner.unflatten(-2, (h // period, period)).unflatten(-1, (w // period, period))
    pattern = tiles.mean(dim=(-4, -2))  # (B, C, period, period)
    total = inner.flatten(-2).var(-1, unbiased=False)
    periodic = pattern.flatten(-2).var(-1, unbiased=False)
    share = torch.where(total.sqrt() > flat, periodic / total.clamp(min=1e-300),
                        torch.zeros_like(total))
    return share.clamp(0, 1).mean().item()


# ---------------------------------------------------------------------- activations
def activation_maps(act: torch.Tensor) -> torch.Tensor:
    """One image's activation as (channels, H, W) maps for display.

    Args:
        act: a layer output for one image: (C, H, W), or a flat vector (N,) from a
            linear layer, which is shown as one map with rows of ceil(sqrt(N)) values
            (the unused tail is NaN, so a plot leaves it blank).
    """
    if act.ndim == 3:
        return act.float()
    if act.ndim == 1:
        n = act.numel()
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        flat = torch.full((rows * cols,), float("nan"))
        flat[:n] = act.float()
        return flat.view(1, rows, cols)
    raise ValueError(f"expected one image's activation (C, H, W) or (N,), got {tuple(act.shape)}")
