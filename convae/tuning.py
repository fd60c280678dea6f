"""Choosing a classical filter's strength on training images, never on the test images.

Total variation and non-local means have a strength (how much they smooth) whose best
value depends on the noise: too gentle leaves it, too strong wipes out the strokes. For
each noise kind and level the strength is the one of the filter's grid with the best
mean PSNR on the first :data:`TUNE_IMAGES` training images, corrupted with a noise draw
of their own (:data:`TUNE_SEED`). The test images a page shows, or a table measures,
play no part in it, so the filters get no advantage a trained model could not have.
"""

from __future__ import annotations

import functools

import torch

from .denoise import CLASSICAL_FILTERS, ClassicalFilter
from .metrics import psnr_per_image
from .noise import Noise, add_noise

TUNE_IMAGES = 32  # about 0.3 s per filter and noise level on one core
TUNE_SEED = 1234  # not the test sets' noise seed (0)


def choose_strength(
    filt: ClassicalFilter, images: torch.Tensor, noise: Noise, seed: int = TUNE_SEED
) -> float:
    """The strength of ``filt``'s grid with the best mean PSNR on ``images`` under
    ``noise`` (the gentlest of equals).

    Args:
        filt: a classical filter of :data:`convae.denoise.CLASSICAL_FILTERS`.
        images: (N, C, H, W) float in [0, 1]: clean training images.
        noise: the noise to remove.
        seed: the noise draw.
    """
    if len(filt.strengths) == 1:
        return filt.strengths[0]
    noisy = add_noise(images, noise.kind, noise.level, seed=seed)
    scores = [psnr_per_image(filt(noisy, s), images).mean().item() for s in filt.strengths]
    return filt.strengths[scores.index(max(scores))]


@functools.lru_cache(maxsize=1024)
def _tuned(dataset: str, root: str, noise: Noise) -> tuple[tuple[str, float], ...]:
    from .data import load_dataset

    images = load_dataset(dataset, train=True, root=root).floats(slice(0, TUNE_IMAGES))
    return tuple((name, choose_strength(f, images, noise)) for name, f in CLASSICAL_FILTERS.items())


def tuned_strengths(dataset: str, noise: Noise) -> dict[str, float]:
    """Each classical filter's strength for ``noise`` on ``dataset``, by filter name,
    chosen on its training images (once per process for each dataset, kind and level)."""
    from .data import source_root

    # the level rounded: a slider's 0.30000000000000004 is 0.3's strength, not a new search
    key = Noise(noise.kind, round(noise.level, 6)) if not noise.is_clean else Noise()
    # keyed by the folder too: another data folder may hold other images of that name
    return dict(_tuned(dataset, str(source_root(dataset)), key))


def classical_outputs(noisy: torch.Tensor, dataset: str, noise: Noise) -> dict[str, torch.Tensor]:
    """Each classical filter's output for ``noisy`` (a (B, C, H, W) float batch in [0, 1]
    corrupted by ``noise``), at the strength chosen for that noise on ``dataset``'s
    training images, by filter name."""
    strengths = tuned_strengths(dataset, noise)
    return {name: f(noisy, strengths[name]) for name, f in CLASSICAL_FILTERS.items()}
