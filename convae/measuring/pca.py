"""PCA as an autoencoder: the classical reference with the same code size.

A linear projection onto the ``k`` directions along which the training images vary most,
fitted in closed form (an eigendecomposition of their covariance, no training loop). It
has the autoencoders' interface, so everything that measures a model measures it too:

    encode(x) = (x - mean) @ V_k        # (B, k): the code
    decode(z) = z @ V_k.T + mean        # back to (B, C, H, W)
    forward(x) = decode(encode(x)), clipped to the pixel range [0, 1]

On its training images, PCA's mean squared error per pixel (before the clipping) is the
sum of the discarded eigenvalues over the number of pixels: no linear code of ``k``
values does better there, which is why a good autoencoder should beat it on test images.
"""

from __future__ import annotations

import functools
import hashlib

import torch
from torch import nn

from convae.base.files import kept
from convae.base.tensors import to_unit_float

_CHUNK = 2000  # images per step when summing the covariance (bounds memory)


class PCAModel(nn.Module):
    """PCA with ``k`` components over images of shape ``in_shape``.

    Attributes:
        mean: (D,) the training images' mean, D = C * H * W.
        components: (k, D) orthonormal rows, by decreasing variance.
        eigenvalues: (D,) all the covariance's eigenvalues, largest first.
    """

    def __init__(
        self,
        mean: torch.Tensor,
        components: torch.Tensor,
        eigenvalues: torch.Tensor,
        in_shape: tuple[int, int, int],
    ) -> None:
        super().__init__()
        # parameters (frozen), not buffers: code that runs a model asks it for its device
        self.mean = nn.Parameter(mean.float(), requires_grad=False)
        self.components = nn.Parameter(components.float(), requires_grad=False)
        self.register_buffer("eigenvalues", eigenvalues.double())
        self.in_shape = tuple(in_shape)

    @property
    def latent_size(self) -> int:
        return self.components.shape[0]

    @property
    def num_params(self) -> int:
        return self.components.numel() + self.mean.numel()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) floats in [0, 1] -> (B, k) code."""
        return (x.flatten(1) - self.mean) @ self.components.T

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, k) code -> (B, C, H, W), not clipped."""
        return (z @ self.components + self.mean).view(len(z), *self.in_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)).clamp(0, 1)


def _spectrum(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean (D,), eigenvalues (D,) and eigenvectors (D, D) of the images' covariance
    (normalised by N), largest first, each vector's sign fixed (largest entry positive)
    so that the same images always give the same components."""
    n = len(images)
    if n < 2:
        raise ValueError(f"PCA needs at least 2 images, got {n}")
    total = torch.zeros(images[0].numel(), dtype=torch.float64)
    for i in range(0, n, _CHUNK):
        total += to_unit_float(images[i : i + _CHUNK]).flatten(1).double().sum(0)
    mean = total / n
    if n < len(mean):
        values, vectors = _spectrum_of_few(images, mean)
    else:
        cov = torch.zeros(len(mean), len(mean), dtype=torch.float64)
        for i in range(0, n, _CHUNK):
            x = to_unit_float(images[i : i + _CHUNK]).flatten(1).double() - mean
            cov += x.T @ x
        cov /= n
        values, vectors = torch.linalg.eigh(cov)  # ascending
        values, vectors = values.flip(0).clamp(min=0), vectors.flip(1)
    peak = vectors.abs().argmax(0)
    signs = vectors[peak, torch.arange(vectors.shape[1])].sign()
    signs[signs == 0] = 1
    return mean, values, vectors * signs


def _spectrum_of_few(images: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The covariance's eigenvalues and eigenvectors, largest first, for fewer images
    than pixel values (a class's own pictures): from the N x N matrix of the images'
    products instead of the D x D covariance (3072 x 3072 for colour 32x32 took seconds).

    N centred images span at most N - 1 directions; their eigenvectors are the images'
    combinations ``x.T @ u / sqrt(N * value)``. The directions they do not span (value 0)
    are completed to an orthonormal basis of all D, in a fixed way (a QR decomposition).
    """
    x = to_unit_float(images).flatten(1).double() - mean  # (N, D)
    values, u = torch.linalg.eigh(x @ x.T / len(x))  # ascending, (N,), (N, N)
    values, u = values.flip(0), u.flip(1)
    kept = values > values[0] * len(mean) * torch.finfo(torch.float64).eps
    spanned = x.T @ u[:, kept] / (len(x) * values[kept]).sqrt()  # (D, r), orthonormal
    basis, _ = torch.linalg.qr(spanned, mode="complete")  # (D, D); first r span the same
    basis[:, : spanned.shape[1]] = spanned  # exactly those (QR may flip their signs)
    all_values = torch.zeros(len(mean), dtype=torch.float64)
    all_values[: int(kept.sum())] = values[kept]
    return all_values, basis


def fit_pca(images: torch.Tensor, k: int) -> PCAModel:
    """PCA with ``k`` components fitted on ``images`` ((N, C, H, W) uint8 or float)."""
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
    d = images[0].numel()
    if not 1 <= k <= d:
        raise ValueError(f"k must be between 1 and {d} (the number of pixel values), got {k}")
    mean, values, vectors = _spectrum(images)
    c, h, w = images.shape[1:]
    return PCAModel(mean, vectors[:, :k].T.contiguous(), values, (c, h, w))


@functools.lru_cache(maxsize=4)
def _dataset_spectrum(
    dataset: str, root: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple]:
    """The spectrum of a dataset's training images, kept in the cache folder under a
    digest of their pixels: made once per machine (CIFAR-10's 3072 x 3072 covariance
    takes half a minute), read by every process after that."""
    from convae.data.datasets import cache_dir, load_dataset

    train = load_dataset(dataset, train=True, root=root)
    digest = hashlib.blake2b(train.images.numpy().tobytes(), digest_size=10).hexdigest()

    def make() -> dict[str, torch.Tensor]:
        mean, values, vectors = _spectrum(train.images)
        return {"mean": mean, "values": values, "vectors": vectors}

    saved = kept(cache_dir() / "pca" / f"{dataset}-{digest}.pt", make)
    return saved["mean"], saved["values"], saved["vectors"], train.shape


def pca_for(dataset: str, k: int) -> PCAModel:
    """PCA with ``k`` components fitted on a dataset's whole training split.

    The eigendecomposition is done once per dataset and machine (a few seconds for
    MNIST's 60,000 images, half a minute for CIFAR-10's), then read from the cache
    folder; every ``k`` after that is a slice of it.
    """
    from convae.data.datasets import source_root

    # keyed by the folder too: another data folder may hold other images of that name
    mean, values, vectors, shape = _dataset_spectrum(dataset, str(source_root(dataset)))
    if not 1 <= k <= len(mean):
        raise ValueError(f"k must be between 1 and {len(mean)} for {dataset}, got {k}")
    return PCAModel(mean, vectors[:, :k].T.contiguous(), values, shape)
