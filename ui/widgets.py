"""Widgets several pages share: picking images, choosing noise, showing image rows."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from convae import ImageSet, Noise
from convae.data.images import ImageError, image_to_tensor
from convae.data.noise import NOISE_KINDS
from convae.figures import fit_scale

from . import layout
from .links import URL
from .pictures import picture

NOISE_LABELS = {
    "gaussian": "Gaussian (grain)",
    "salt-pepper": "Salt & pepper (specks)",
    "mask": "Masking (dropped pixels)",
    "none": "None (clean input)",
}
SOURCES = ["Random test images", "One class", "By index", "Upload your own", "Draw your own"]


@dataclass
class Picked:
    images: torch.Tensor  # (B, C, H, W) float in [0, 1]
    names: list[str]  # one short caption per image
    about: str = "clean test images"  # what they are, in a few words


def _new_draw(key: str) -> None:
    st.session_state[key] = (int(st.session_state.get(key, 0)) + 1) % 10_001  # the box's range


def pick_images(
    test: ImageSet, key: str, default_count: int = 8, max_count: int = 16
) -> Picked | None:
    """Image source controls; returns the chosen images or None (after saying why)."""
    c_src, c_n, c_opt, c_btn = st.columns([2.2, 1.6, 1.6, 1], vertical_alignment="bottom")
    source = c_src.selectbox(
        "Images",
        SOURCES,
        key=f"{key}_source",
        bind=URL,
        help="Which test images to work on (never seen in training).",
    )
    if source == SOURCES[4]:
        from .pad import draw_pad  # the pad's component loads only where it is shown

        drawn = draw_pad(f"{key}_pad", test.name, test.shape)
        return None if drawn is None else Picked(drawn[None], ["drawing"], "your drawing")
    if source != SOURCES[3]:
        count = c_n.slider("How many", 1, max_count, default_count, key=f"{key}_count", bind=URL)
    n = len(test)
    if source == SOURCES[0]:
        draw = c_opt.number_input(
            "Draw",
            0,
            10_000,
            0,
            key=f"{key}_draw",
            bind=URL,
            help="Each draw is a different random set of test images.",
        )
        c_btn.button(
            "New",
            icon=":material/casino:",
            key=f"{key}_new",
            on_click=_new_draw,
            args=(f"{key}_draw",),
            width="stretch",
        )
        g = torch.Generator().manual_seed(int(draw))
        idx = torch.randperm(n, generator=g)[:count]
    elif source == SOURCES[1]:
        cls = c_opt.selectbox(
            "Class",
            range(len(test.classes)),
            key=f"{key}_class",
            format_func=lambda c: test.classes[c],
            bind=URL,
        )
        pool = (test.labels == cls).nonzero().flatten()
        idx = pool[:count]
    elif source == SOURCES[2]:
        start = c_opt.number_input(
            f"First index (0-{n - 1})", 0, n - 1, 0, key=f"{key}_index", bind=URL
        )
        idx = torch.arange(int(start), min(n, int(start) + count))
    else:
        images, names = upload_images(f"{key}_upload", test.shape, max_count, where=c_n)
        if not images:
            st.info(
                "Upload one or more pictures. They are converted to "
                f"{test.shape[1]}x{test.shape[2]} {'grey' if test.shape[0] == 1 else 'colour'}"
                " like the dataset (tip: a light drawing on a dark background looks "
                "like MNIST).",
                icon=":material/upload:",
            )
            return None
        return Picked(torch.stack(images[:max_count]), names[:max_count], "your pictures")
    return Picked(
        test.floats(idx), [f"#{int(i)} ({test.classes[int(test.labels[i])]})" for i in idx]
    )


def upload_images(
    key: str, shape: tuple[int, int, int], max_count: int = 16, where=None
) -> tuple[list[torch.Tensor], list[str]]:
    """A picture uploader; returns the pictures that could be read, each (C, H, W) in
    [0, 1] like ``shape``, and their file names. What cannot be read is said on the page."""
    files = (where or st).file_uploader(
        "PNG or JPEG pictures",
        type=["png", "jpg", "jpeg"],
        accept_multiple_files=True,
        key=key,
    )
    images, names = [], []
    files = files or []
    if len(files) > max_count:  # each one is decoded on every full rerun of the page
        st.warning(f"Only the first {max_count} of the {len(files)} pictures are used.")
    for f in files[:max_count]:
        try:
            images.append(image_to_tensor(f.getvalue(), shape))
            names.append(f.name)
        except ImageError as e:
            st.error(f"{f.name}: {e}")
    return images, names


def noise_controls(
    key: str, default_kind: str = "gaussian", default_level: float = 0.3, seed: bool = True
) -> tuple[Noise, int]:
    """Noise kind, level and seed side by side; returns the noise and the seed."""
    cols = st.columns([1.4, 2.4, 0.9] if seed else [1.4, 3.3])
    kinds = [*NOISE_KINDS, "none"]
    kind = cols[0].selectbox(
        "Noise",
        kinds,
        index=kinds.index(default_kind),
        key=f"{key}_kind",
        format_func=NOISE_LABELS.get,
        bind=URL,
        help="\n".join(f"- **{k}**: {v}" for k, v in NOISE_KINDS.items()),
    )
    level = cols[1].slider(
        "Noise level",
        0.0,
        1.0,
        default_level,
        0.05,
        key=f"{key}_level",
        disabled=kind == "none",
        bind=URL,
        help="Gaussian: standard deviation (pixel values are 0 to 1). "
        "Salt & pepper and masking: fraction of pixels hit.",
    )
    noise_seed = 0
    if seed:
        noise_seed = int(
            cols[2].number_input(
                "Noise seed",
                0,
                9999,
                0,
                key=f"{key}_seed",
                bind=URL,
                help="Same seed, same noise pattern.",
            )
        )
    return Noise(kind, level if kind != "none" else 0.0), noise_seed


def image_row(
    label: str,
    images: torch.Tensor,
    caption: str = "",
    scale: int | None = None,
    label_width: float = 1.0,
) -> None:
    """A bold label (and caption) on the left, the images in one row on the right."""
    scale = scale or fit_scale(len(images), images.shape[-1])
    if layout.presenting():  # larger type needs a wider label column
        label_width *= 1.6
    left, right = st.columns([label_width, 6], vertical_alignment="center")
    left.markdown(f"**{label}**")
    if caption:
        left.caption(caption)
    picture(images, scale=scale, where=right)


def code_as_images(code: torch.Tensor) -> torch.Tensor:
    """One image's code (C, H, W) or (N,) as grey tiles in [0, 1] for display."""
    from convae.figures import normalise
    from convae.measuring.activations import activation_maps

    maps = activation_maps(code).nan_to_num(0.0)
    return normalise(maps.unsqueeze(1))
