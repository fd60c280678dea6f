"""A batch of images as one picture: tiles in rows, each pixel a crisp square.

Small images are enlarged with nearest-neighbour so each pixel stays a crisp square (a
28x28 digit must be readable on a projector). The app, the figures and the challenge's
reconstruction strip all lay out images this way.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

GRID_LINE = 1.0  # white lines between tiles


def upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H*scale, W*scale) by repeating pixels (no smoothing)."""
    return x if scale == 1 else F.interpolate(x, scale_factor=scale, mode="nearest")


def image_grid(
    images: torch.Tensor, nrow: int | None = None, scale: int = 4, padding: int = 2
) -> np.ndarray:
    """A batch as one picture: (H, W, 3) uint8, ``nrow`` images per row.

    Args:
        images: (B, C, H, W) float in [0, 1] (values outside are clipped), C = 1 or 3.
        nrow: images per row; default all in one row.
        scale: nearest-neighbour enlargement of each image.
        padding: white pixels between images (not enlarged).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1 or 3, H, W), got {tuple(images.shape)}")
    x = upscale(images.detach().float().cpu().clamp(0, 1), scale)
    grid = make_grid(x, nrow=nrow or len(x), padding=padding, pad_value=GRID_LINE)
    return grid.mul(255).round().byte().permute(1, 2, 0).numpy()
