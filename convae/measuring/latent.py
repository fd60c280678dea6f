"""The latent space: the codes of many images, their 2-D map, morphs between two, and
the images the decoder makes from any point of the map.

The map is the codes' PCA projection on two axes, or, for a model whose code has just
two values, the code itself. Either way a point ``p`` of the map stands for the code
``p @ components + mean`` (for the 2-value model: ``p``), which the decoder turns into
an image; most of the map is empty, and what the decoder makes there shows why a plain
autoencoder is no generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from convae.base.tensors import eval_mode, to_unit_float
from convae.nn.models import Autoencoder


@torch.no_grad()
def encode_all(model: Autoencoder, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Codes of ``images`` (uint8 or float), flattened: (N, latent_size) float32."""
    # 128: a batch's feature maps stay in the CPU cache; with 1000, 5,000 MNIST codes took
    # 2x (conv-upsample) to 2.1x (denoiser) as long on one thread (measured)
    with eval_mode(model):
        out = [
            model.encode(to_unit_float(images[i : i + batch_size])).flatten(1).float()
            for i in range(0, len(images), batch_size)
        ]
    return torch.cat(out) if out else torch.empty(0, model.latent_size)


@dataclass
class PCA:
    """A 2-D map of codes: ``points = (codes - mean) @ components.T``.

    ``projected`` is False when the map is the code itself (a 2-value code: mean 0,
    components the identity), so its axes are the code's two values, not PCs.
    """

    points: torch.Tensor  # (N, 2)
    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (2, D) orthonormal rows
    explained: tuple[float, float]  # fraction of the codes' variance along each axis
    projected: bool = True

    def project(self, codes: torch.Tensor) -> torch.Tensor:
        """Where codes (M, D) land on the map: (M, 2)."""
        return (codes.float() - self.mean) @ self.components.T

    def codes_at(self, points: torch.Tensor) -> torch.Tensor:
        """The codes that map points (M, 2) stand for: (M, D), back through the basis.

        For a projected map these lie in the plane through the mean spanned by the two
        components: every other direction of the code is at its mean.
        """
        return points.float() @ self.components + self.mean


def _check_codes(codes: torch.Tensor) -> None:
    if codes.ndim != 2 or len(codes) < 2:
        raise ValueError(f"need at least two codes as an (N, D) tensor, got {tuple(codes.shape)}")


def pca_2d(codes: torch.Tensor) -> PCA:
    """Project codes (N, D) on their two directions of largest variance.

    Signs are fixed (largest loading positive) so the picture does not flip between
    runs. A dimension that never varies (dead units) simply gets no variance.
    """
    _check_codes(codes)
    x = codes.double()
    mean = x.mean(0)
    centred = x - mean
    # eigenvectors of the D x D scatter matrix, not an SVD of the N x D codes: the same
    # directions, and 10,000 codes of 196 values take ~10 ms instead of ~200 (measured)
    values, vectors = torch.linalg.eigh(centred.T @ centred)  # ascending
    values = values.flip(0).clamp(min=0)
    comps = vectors.flip(1).T[:2]
    if comps.shape[0] < 2:  # D == 1: pad a zero direction
        comps = torch.cat([comps, torch.zeros(1, x.shape[1], dtype=x.dtype)])
    signs = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    total = values.sum()
    var = torch.cat([values, torch.zeros(2, dtype=values.dtype)])[:2]
    explained = tuple((var / total).tolist()) if total > 0 else (0.0, 0.0)
    return PCA((centred @ comps.T).float(), mean.float(), comps.float(), explained)


def code_map(codes: torch.Tensor) -> PCA:
    """The 2-D map of codes (N, D): for D = 2 the codes themselves, else their PCA.

    A 2-value code needs no projection, and a rotated PCA of it would hide which axis
    is which code value; ``explained`` then is each value's share of the variance.
    """
    _check_codes(codes)
    if codes.shape[1] != 2:
        return pca_2d(codes)
    x = codes.float()
    var = x.double().var(0, unbiased=False)
    total = float(var.sum())
    explained = tuple((var / total).tolist()) if total > 0 else (0.0, 0.0)
    return PCA(x.clone(), torch.zeros(2), torch.eye(2), explained, projected=False)


@torch.no_grad()
def decode_points(model: Autoencoder, pca: PCA, points: torch.Tensor) -> torch.Tensor:
    """Decode points of the map: (M, 2) -> images (M, C, H, W).

    Each point becomes the code it stands for (:meth:`PCA.codes_at`), shaped as the
    model's code, then goes through the decoder alone.
    """
    points = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)
    codes = pca.codes_at(points).view(len(points), *model.code_shape)
    with eval_mode(model):
        return model.decode(codes)


def map_extent(points: torch.Tensor, pad: float = 0.05) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the box around map points (N, 2), widened by ``pad`` of its size
    on each side (a degenerate axis gets a width of 1)."""
    lo, hi = points.min(0).values, points.max(0).values
    size = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    lo, hi = lo - pad * size, hi + pad * size
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def grid_points(extent: tuple[float, float, float, float], n: int) -> torch.Tensor:
    """An n x n grid of cell centres over ``extent``: (n*n, 2), row by row from the top
    (largest y) and left to right, the order of an image grid's tiles."""
    if n < 1:
        raise ValueError(f"the grid needs at least one cell a side, got {n}")
    x0, x1, y0, y1 = extent
    xs = x0 + (torch.arange(n, dtype=torch.float64) + 0.5) * (x1 - x0) / n
    ys = y1 - (torch.arange(n, dtype=torch.float64) + 0.5) * (y1 - y0) / n
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], 1).float()


def cell_counts(
    points: torch.Tensor, extent: tuple[float, float, float, float], n: int
) -> torch.Tensor:
    """How many map points (N, 2) fall in each cell of the n x n grid of
    :func:`grid_points`: (n*n,) in the same order (points outside count nowhere)."""
    x0, x1, y0, y1 = extent
    col = ((points[:, 0] - x0) / (x1 - x0) * n).floor().long()
    row = ((y1 - points[:, 1]) / (y1 - y0) * n).floor().long()
    inside = (col >= 0) & (col < n) & (row >= 0) & (row < n)
    return torch.bincount(row[inside] * n + col[inside], minlength=n * n)


@torch.no_grad()
def decoding_grid(
    model: Autoencoder, pca: PCA, extent: tuple[float, float, float, float], n: int
) -> torch.Tensor:
    """The map of decodings: the decoder's image at every cell centre of an n x n grid
    over ``extent``, (n*n, C, H, W) in :func:`grid_points` order."""
    return decode_points(model, pca, grid_points(extent, n))


@torch.no_grad()
def interpolate(
    model: Autoencoder, a: torch.Tensor, b: torch.Tensor, ts: list[float] | torch.Tensor
) -> torch.Tensor:
    """Decode straight-line mixes of the codes of images ``a`` and ``b``.

    Args:
        a, b: single images (C, H, W) in [0, 1].
        ts: mixing weights; 0 gives (the reconstruction of) ``a``, 1 gives ``b``.

    Returns:
        (len(ts), C, H, W) decoded images.
    """
    ts = torch.as_tensor(ts, dtype=torch.float32)
    with eval_mode(model):
        za, zb = model.encode(torch.stack([a, b]))
        t = ts.view(-1, *([1] * za.ndim))
        return model.decode((1 - t) * za + t * zb)
