"""A batch of images shown as one crisp picture: the way every page shows images."""

from __future__ import annotations

import streamlit as st
import torch

from convae.data.grids import image_grid


def picture(
    images: torch.Tensor,
    caption: str | None = None,
    scale: int = 4,
    nrow: int | None = None,
    where=None,
) -> None:
    """Show a batch as one crisp picture, each image enlarged ``scale`` times.

    The picture is sent at one pixel per image pixel (grey when the images are) and the
    browser enlarges it without smoothing (``image-rendering: pixelated``, in
    :mod:`ui.layout`): encoding the enlarged RGB picture cost a class's server 25 times
    more. PNG, never JPEG: JPEG's 8x8 blocks would add artifacts of their own (exactly
    what the Compare page asks people to look for).
    """
    grid = image_grid(images, nrow=nrow, scale=1, padding=1)
    if images.shape[1] == 1:
        grid = grid[:, :, 0]  # make_grid repeats grey into RGB; one channel suffices
    (where or st).image(grid, caption=caption, width=grid.shape[1] * scale, output_format="PNG")
