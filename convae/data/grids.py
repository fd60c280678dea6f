"""A batch of images as one picture: tiles in rows, each pixel a crisp square.

Small images are enlarged with nearest-neighbour so each pixel stays a crisp square (a
28x28 digit must be readable on a projector). The app, the figures and the challenge's
reconstruction strip all lay out images this way: torchvision's ``make_grid`` layout
(a test holds them equal), without importing torchvision, which costs every app
process, worker and command a second at start.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

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
    x = upscale(images.detach().float().cpu().clamp(0, 1), scale).expand(-1, 3, -1, -1)
    b, _, h, w = x.shape
    if b == 1:  # a single image, as make_grid gives it: no border
        return _to_rgb8(x[0])
    columns = min(nrow or b, b)
    rows = math.ceil(b / columns)
    grid = torch.full(
        (3, rows * (h + padding) + padding, columns * (w + padding) + padding), GRID_LINE
    )
    for i, image in enumerate(x):
        top, left = (
            (i // columns) * (h + padding) + padding,
            (i % columns) * (w + padding) + padding,
        )
        grid[:, top : top + h, left : left + w] = image
    return _to_rgb8(grid)


def _to_rgb8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) floats in [0, 1] -> (H, W, 3) uint8."""
    return image.mul(255).round().byte().permute(1, 2, 0).numpy()
