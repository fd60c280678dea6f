"""Choosing a classical filter's strength on training images, never on the test images.

Total variation and non-local means have a strength (how much they smooth) whose best
value depends on the noise: too gentle leaves it, too strong wipes out the strokes. For
each noise kind and level the strength is the one of the filter's grid with the best
mean PSNR on the first :data:`TUNE_IMAGES` training images, corrupted with a noise draw
of their own (:data:`TUNE_SEED`). The test images a page shows, or a table measures,
play no part in it, so the filters get no advantage a trained model could not have.

A search costs about half a second of CPU, too slow for a slider move: the checkpoint
index ships the strengths chosen for every noise kind at the levels of :data:`LEVELS`
(``scripts/train_checkpoints.py`` writes them; a test checks that searching again gives
them), and :func:`strengths_for` reads them there, searching only for other datasets
(once per process for each kind and level).
"""

from __future__ import annotations

import functools

import torch

from convae.base.tensors import to_unit_float
from convae.data.noise import NOISE_KINDS, Noise, add_noise
from convae.measuring.denoise import (
    CLASSICAL_FILTERS,
    SWEEP_IMAGES,
    SWEEP_LEVELS,
    SWEEP_SEED,
    ClassicalFilter,
    Sweep,
    classical_sweep,
)
from convae.measuring.metrics import psnr_per_image

TUNE_IMAGES = 32  # about 0.3 s per filter and noise level on one core
TUNE_SEED = 1234  # not the test sets' noise seed (0)
# the levels whose strengths the index ships: the app's noise slider, 0 to 1 in 0.05 steps
LEVELS = tuple(round(0.05 * i, 2) for i in range(1, 21))


def choose_strength(
    filt: ClassicalFilter, images: torch.Tensor, noise: Noise, seed: int = TUNE_SEED
) -> float:
    """The strength of ``filt``'s grid with the best mean PSNR on ``images`` under
    ``noise`` (the gentlest of equals).

    Args:
        filt: a classical filter of :data:`convae.measuring.denoise.CLASSICAL_FILTERS`.
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
    from convae.data.datasets import load_dataset

    images = load_dataset(dataset, train=True, root=root).floats(slice(0, TUNE_IMAGES))
    return tuple((name, choose_strength(f, images, noise)) for name, f in CLASSICAL_FILTERS.items())


def _key(noise: Noise) -> Noise:
    # the level rounded: a slider's 0.30000000000000004 is 0.3's strength, not a new search
    return Noise(noise.kind, round(noise.level, 6)) if not noise.is_clean else Noise()


_tuned_given: dict[tuple[str, Noise], tuple[tuple[str, float], ...]] = {}


def tuned_strengths(
    dataset: str, noise: Noise, train_images: torch.Tensor | None = None
) -> dict[str, float]:
    """Each classical filter's strength for ``noise`` on ``dataset``, by filter name,
    chosen on its training images (searched once per process for each dataset, kind and
    level).

    ``train_images``: the dataset's training images where ``load_dataset`` cannot read
    them (a session's uploaded pictures, whose name is their content's hash); the first
    :data:`TUNE_IMAGES` are used.
    """
    if train_images is not None:
        key = (dataset, _key(noise))
        if key not in _tuned_given:
            images = to_unit_float(train_images[:TUNE_IMAGES])
            _tuned_given[key] = tuple(
                (name, choose_strength(f, images, key[1])) for name, f in CLASSICAL_FILTERS.items()
            )
        return dict(_tuned_given[key])
    from convae.data.datasets import source_root

    # keyed by the folder too: another data folder may hold other images of that name
    return dict(_tuned(dataset, str(source_root(dataset)), _key(noise)))


def strength_table(dataset: str) -> dict[str, dict[str, float]]:
    """:func:`tuned_strengths` for clean input and every noise kind at each of
    :data:`LEVELS`, by noise (``"gaussian:0.3"``): what the index ships."""
    noises = [Noise(), *(Noise(kind, level) for kind in NOISE_KINDS for level in LEVELS)]
    return {str(n): tuned_strengths(dataset, n) for n in noises}


def strengths_for(
    dataset: str, noise: Noise, train_images: torch.Tensor | None = None
) -> dict[str, float]:
    """The strengths for ``noise`` on ``dataset`` at the nearest of :data:`LEVELS`: as
    the checkpoint index ships them (chosen by :func:`tuned_strengths`), else
    :func:`tuned_strengths` itself. Snapping to those levels bounds the searches a page
    can cause to one per kind and level, whatever level a link carries.
    """
    from convae.nn.zoo import shipped_baselines

    key = _key(noise)
    if not key.is_clean:
        key = Noise(key.kind, min(LEVELS, key=lambda level: abs(level - key.level)))
    shipped = shipped_baselines(dataset).get("strengths", {}).get(str(key))
    if isinstance(shipped, dict) and set(shipped) == set(CLASSICAL_FILTERS):
        return dict(shipped)
    return tuned_strengths(dataset, key, train_images)


def classical_sweep_for(
    dataset: str,
    kind: str,
    test_images: torch.Tensor | None = None,
    train_images: torch.Tensor | None = None,
    n_images: int = SWEEP_IMAGES,
) -> Sweep:
    """The classical filters' noise sweep on ``dataset``'s first ``n_images`` test images
    at :data:`SWEEP_LEVELS` (seed :data:`SWEEP_SEED`), the strengths from
    :func:`strengths_for`: as the checkpoint index ships it (it costs about 7 s of CPU),
    else measured. ``n_images``: as many as the model's sweep it is joined with was
    measured on (fewer than :data:`SWEEP_IMAGES` where the test set has fewer)."""
    from convae.data.datasets import load_dataset
    from convae.nn.zoo import shipped_baselines

    shipped = shipped_baselines(dataset).get("sweeps", {}).get(kind)
    same = {"kind": kind, "levels": SWEEP_LEVELS, "n_images": n_images, "seed": SWEEP_SEED}
    if isinstance(shipped, dict) and all(shipped.get(k) == v for k, v in same.items()):
        names = ["noisy input", *CLASSICAL_FILTERS]
        psnr, ssim = shipped.get("psnr", {}), shipped.get("ssim", {})
        count = len(SWEEP_LEVELS)
        if all(len(psnr.get(n, [])) == count == len(ssim.get(n, [])) for n in names):
            return Sweep(
                kind,
                list(SWEEP_LEVELS),
                n_images,
                SWEEP_SEED,
                {n: list(psnr[n]) for n in names},
                {n: list(ssim[n]) for n in names},
            )
    if test_images is None:
        images = load_dataset(dataset, train=False).floats(slice(0, n_images))
    else:  # given where load_dataset cannot read them (see tuned_strengths)
        images = to_unit_float(test_images[:n_images])
    return classical_sweep(
        images,
        kind,
        SWEEP_LEVELS,
        lambda level: strengths_for(dataset, Noise(kind, level), train_images),
        SWEEP_SEED,
    )


def classical_outputs(
    noisy: torch.Tensor, dataset: str, noise: Noise, train_images: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Each classical filter's output for ``noisy`` (a (B, C, H, W) float batch in [0, 1]
    corrupted by ``noise``), at the strength chosen for that noise on ``dataset``'s
    training images, by filter name."""
    strengths = strengths_for(dataset, noise, train_images)
    return {name: f(noisy, strengths[name]) for name, f in CLASSICAL_FILTERS.items()}
