"""What needs no training, beside a model: PCA with the model's code size measured on the
same test images, and what the model was trained for, in the words the pages use."""

from __future__ import annotations

import math

import streamlit as st

from convae import ConvaeError, Noise, evaluate
from convae.nn.models import ARCHITECTURES

from . import catalogue, state
from .catalogue import ModelRef

TEST_IMAGES = 500  # the clean test images every model and PCA are measured on


@st.cache_data(show_spinner=False, max_entries=64)
def _clean_eval(model_key: str, dataset: str, _model) -> dict:
    images = state.get_dataset(dataset).images[:TEST_IMAGES]
    return evaluate(_model, images).to_dict()


def clean_quality(ref: ModelRef, dataset: str) -> dict:
    """MSE, PSNR and SSIM of ``ref`` on the first :data:`TEST_IMAGES` clean test images
    (once per server for each model)."""
    return _clean_eval(ref.key, dataset, ref.model)


def pca_quality(dataset: str, k: int) -> dict:
    """:func:`clean_quality` of PCA with ``k`` values."""
    return _clean_eval(f"pca:{dataset}:{k}", dataset, catalogue.pca_model(dataset, k))


def vs_pca(ref: ModelRef, dataset: str) -> float:
    """The model's clean PSNR minus that of PCA with the same code size (dB, on the same
    test images): negative where a linear projection reconstructs better."""
    k = ref.model.latent_size
    return clean_quality(ref, dataset)["psnr"] - pca_quality(dataset, k)["psnr"]


def compresses(ref: ModelRef) -> bool:
    """Whether ``ref``'s code is smaller than its input: with as many values as pixels,
    PCA with the same code size keeps the whole image (a denoiser's code may be so)."""
    if ref.kind == "pca":  # PCA's own rows: k values of the image, fewer than its pixels
        return True
    return ref.model.latent_size < math.prod(ref.model.config.in_shape)


def below_pca(ref: ModelRef, dataset: str) -> bool:
    """Whether ``ref`` is a trained network that compresses and reconstructs clean test
    images worse than PCA with its code size."""
    return ref.trained and ref.kind != "pca" and compresses(ref) and vs_pca(ref, dataset) < 0


def _from_tutorial(ref: ModelRef) -> bool:
    arch = ARCHITECTURES.get(ref.arch)
    return arch is not None and arch.from_tutorial


TUTORIAL_NOTE = (
    "The tutorials' architectures are kept as they define them: they show what a design "
    "costs, not a network at its best."
)


def below_pca_note(ref: ModelRef, dataset: str) -> str | None:
    """A sentence for a trained model that reconstructs worse than PCA with its code size
    (None otherwise): several of the tutorials' architectures stay below the linear method."""
    if not below_pca(ref, dataset):
        return None
    note = (
        f"**Below PCA with the same code size**: on the first {TEST_IMAGES} clean test "
        f"images this model reconstructs {-vs_pca(ref, dataset):.2f} dB worse than PCA with "
        f"{ref.model.latent_size} values, a linear projection computed in closed form."
    )
    return note + (" " + TUTORIAL_NOTE if _from_tutorial(ref) else "")


def above_pca_note(ref: ModelRef, dataset: str) -> str | None:
    """A sentence for a trained network that reconstructs better than PCA with its code
    size (None otherwise): what its training bought over the best linear code."""
    if not ref.trained or ref.kind == "pca" or not compresses(ref):
        return None  # (without a narrower code, PCA is the identity: nothing to beat)
    if (gain := vs_pca(ref, dataset)) <= 0:
        return None
    return (
        f"**Beats PCA with the same code size**: on the first {TEST_IMAGES} clean test "
        f"images this model reconstructs {gain:.2f} dB better than PCA with "
        f"{ref.model.latent_size} values, the best linear code: what its non-linear "
        "layers and its training bought."
    )


def below_pca_summary(refs: list[ModelRef], names: list[str], dataset: str) -> str | None:
    """One sentence naming each of ``refs`` (shown as ``names``) that is below PCA with
    its code size, with the gap; None when none is."""
    below = [(r, n) for r, n in zip(refs, names, strict=True) if below_pca(r, dataset)]
    if not below:
        return None
    listed = ", ".join(f"{n} ({vs_pca(r, dataset):+.2f} dB)" for r, n in below)
    note = f"**Below PCA with the same code size** on clean test images: {listed}."
    return note + (" " + TUTORIAL_NOTE if any(_from_tutorial(r) for r, _ in below) else "")


def trained_for(ref: ModelRef) -> str:
    """What the model learned from, e.g. "trained on gaussian:0.5 noise", or for a blind
    denoiser "trained on gaussian noise of every level from 0 to 0.6"."""
    if ref.kind == "pca":
        return "no training"
    if not ref.trained:
        return "untrained"
    noise = ref.meta.get("train_noise") or "none"
    if noise == "none":
        return "trained on clean images"
    try:
        parsed = Noise.parse(noise)
    except ConvaeError:  # a checkpoint's own text, shown as it is
        return f"trained on {noise} noise"
    return f"trained on {parsed.describe()}" if parsed.is_range else f"trained on {noise} noise"
