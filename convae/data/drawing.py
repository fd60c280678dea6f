"""A drawing turned into a model input the way MNIST's digits were made.

MNIST's makers took each black-and-white digit from NIST, scaled it to fit a 20x20 box
keeping its aspect ratio (the scaling's anti-aliasing gives the grey edges), and
centred it in a 28x28 field by its centre of mass. :func:`drawing_to_input` does the
same with a student's drawing, so the model sees a digit of the kind it learned from:

1. the ink: the picture's brightness over a black background (light strokes on dark,
   as in MNIST; transparency counts as black);
2. the bounding box of the strokes (pixels with at least :data:`INK_THRESHOLD` ink);
3. that box scaled, anti-aliased, so its longer side is ``box`` pixels (20 for 28x28)
   and its brightest pixel is 1 (nearly every MNIST digit reaches full white, however
   thin the pen was on the pad);
4. pasted into the model's field so that its centre of mass falls on the field's
   centre, to the nearest pixel.

Fashion-MNIST's pictures fill their field (each product photo was resized so that its
longer edge is 28 pixels): for it the box is the whole field (:func:`box_for`). Other
input shapes: the box keeps MNIST's proportion (20/28 of the shorter side, 23 for
32x32), the centre is the middle of the field, and a colour model gets the same grey
drawing in its three channels. When centring would push part of a lopsided stroke out
of the field, the drawing is moved only as far as the field allows: nothing drawn is cut
off, and the centre of mass is as near the middle as that leaves it.

Whatever reaches these functions comes from a browser, so anything can: wrong types and
shapes, NaN, huge arrays and malformed PNGs are refused with a :class:`DrawingError`
before any large work is done.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from convae.base.errors import ConvaeError

MAX_SIDE = 2048  # a drawing pad is a few hundred pixels wide; larger is refused
MAX_PNG_BYTES = 4 * 1024 * 1024  # a 2048x2048 RGBA drawing compresses far below this
INK_THRESHOLD = 0.1  # fainter pixels (a pen's soft fringe) do not widen the bounding box
MNIST_BOX = 20 / 28  # the digit's box as a fraction of the field
PNG_DATA_URL = "data:image/png;base64,"
FILLS_FIELD = ("fashion-mnist",)  # datasets whose pictures span the whole field


class DrawingError(ConvaeError):
    """A drawing that cannot be used as a model input."""


def ink(picture: np.ndarray) -> np.ndarray:
    """How much ink each pixel of a picture holds: (H, W) float32 in [0, 1].

    Args:
        picture: (H, W) grey, or (H, W, C) with C = 1 (grey), 2 (grey + alpha),
            3 (RGB) or 4 (RGBA); uint8 (0-255), bool, or float in [0, 1]. Brightness is
            the ink, composited on black by the alpha channel if there is one.

    Raises:
        DrawingError: not an array of that shape and type, empty, larger than
            :data:`MAX_SIDE` on a side, or with values out of range (NaN included).
    """
    if not isinstance(picture, np.ndarray):
        raise DrawingError(f"a drawing must be an array of pixels, not {type(picture).__name__}")
    if picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] not in (1, 2, 3, 4)):
        raise DrawingError(
            f"a drawing must be (height, width) or (height, width, 1-4 channels), "
            f"not {picture.shape}"
        )
    h, w = picture.shape[:2]
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise DrawingError(f"a drawing must be 1 to {MAX_SIDE} pixels on a side, not {h} x {w}")
    kind = picture.dtype.kind
    if kind == "b":
        values = picture.astype(np.float32)
    elif kind in "ui":
        if picture.size and (picture.min() < 0 or picture.max() > 255):
            raise DrawingError("a drawing's integer pixels must be 0 to 255")
        values = picture.astype(np.float32) * np.float32(1 / 255)
    elif kind == "f":
        values = picture.astype(np.float32)
        if not np.isfinite(values).all():
            raise DrawingError("a drawing's pixels must be numbers (not NaN or infinite)")
        if values.min() < 0 or values.max() > 1:
            raise DrawingError("a drawing's float pixels must be between 0 and 1")
    else:
        raise DrawingError(f"a drawing's pixels must be numbers, not {picture.dtype}")
    if values.ndim == 2:
        return values
    channels = values.shape[2]
    alpha = values[..., -1] if channels in (2, 4) else 1.0
    colour = values[..., :3] if channels >= 3 else values[..., :1]
    grey = colour @ np.array([0.299, 0.587, 0.114], np.float32) if channels >= 3 else colour[..., 0]
    return np.ascontiguousarray(grey * alpha, dtype=np.float32)


def mnist_style(
    amount: np.ndarray, size: tuple[int, int] = (28, 28), box: int = 20
) -> torch.Tensor | None:
    """Ink (H, W) -> the digit as MNIST would have it: (h, w) float32 tensor in [0, 1].

    Args:
        amount: ink per pixel in [0, 1], as :func:`ink` returns it.
        size: the field, (height, width).
        box: the longer side of the digit's box in the field, at most the shorter side
            of the field.

    Returns:
        The field, or None when nothing is drawn (no pixel reaches INK_THRESHOLD).
    """
    h, w = size
    if not 1 <= box <= min(h, w):
        raise DrawingError(f"the digit's box must be 1 to {min(h, w)} pixels, not {box}")
    strokes = amount >= INK_THRESHOLD
    if not strokes.any():
        return None
    rows, cols = np.flatnonzero(strokes.any(1)), np.flatnonzero(strokes.any(0))
    crop = torch.from_numpy(amount[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy())
    scale = box / max(crop.shape)
    target = tuple(max(1, round(n * scale)) for n in crop.shape)
    # bilinear with antialias averages every source pixel under each target pixel when
    # shrinking (grey edges, as MNIST's); growing a tiny drawing, it interpolates
    patch = F.interpolate(
        crop[None, None], size=target, mode="bilinear", antialias=True, align_corners=False
    )[0, 0].clamp(0, 1)
    patch = patch / patch.max()
    ph, pw = patch.shape
    total = patch.sum()
    com_y = float((patch.sum(1) * torch.arange(ph)).sum() / total)
    com_x = float((patch.sum(0) * torch.arange(pw)).sum() / total)
    top = min(max(round((h - 1) / 2 - com_y), 0), h - ph)
    left = min(max(round((w - 1) / 2 - com_x), 0), w - pw)
    field = torch.zeros(h, w)
    field[top : top + ph, left : left + pw] = patch
    return field


def box_for(dataset: str, shape: tuple[int, int, int]) -> int:
    """The digit box's side for a dataset's input shape (C, H, W): MNIST's 20/28 of the
    shorter side, or the whole side for a dataset whose pictures fill their field."""
    side = min(shape[1:])
    return side if dataset in FILLS_FIELD else max(1, round(MNIST_BOX * side))


def drawing_to_input(
    picture: np.ndarray, shape: tuple[int, int, int], box: int | None = None
) -> torch.Tensor | None:
    """A drawing as one model input: (C, H, W) float32 in [0, 1], or None if it is empty.

    Args:
        picture: the drawing's pixels (see :func:`ink`), light strokes on dark.
        shape: the model's input (C, H, W); C = 1 or 3 (the grey drawing in each).
        box: the digit's longer side in pixels; default MNIST's 20/28 of the shorter side.

    Raises:
        DrawingError: see :func:`ink`; or an input shape this cannot fill.
    """
    c, h, w = shape
    if c not in (1, 3) or min(h, w) < 1:
        raise DrawingError(f"a drawing can become a 1- or 3-channel image, not {shape}")
    digit = mnist_style(
        ink(picture), (h, w), box if box is not None else max(1, round(MNIST_BOX * min(h, w)))
    )
    return None if digit is None else digit.expand(c, h, w).contiguous()


def read_png(data_url: str) -> np.ndarray:
    """The pixels of a drawing pad's PNG data URL (``data:image/png;base64,...``).

    Returns:
        (H, W, 4) uint8 RGBA.

    Raises:
        DrawingError: not a PNG data URL, too long, a damaged PNG, or more than
            MAX_SIDE pixels on a side (checked before the pixels are decoded).
    """
    if not isinstance(data_url, str) or not data_url.startswith(PNG_DATA_URL):
        raise DrawingError("the drawing did not arrive as a PNG picture")
    encoded = data_url[len(PNG_DATA_URL) :]
    if len(encoded) > math.ceil(MAX_PNG_BYTES / 3) * 4:
        raise DrawingError(f"the drawing is larger than {MAX_PNG_BYTES // 1024**2} MB")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise DrawingError("the drawing's picture data is damaged") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=("PNG",)) as png:
                if max(png.size) > MAX_SIDE:
                    raise DrawingError(
                        f"the drawing is {png.width} x {png.height} pixels; at most "
                        f"{MAX_SIDE} on a side are accepted"
                    )
                return np.asarray(png.convert("RGBA"))
    except DrawingError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DrawingError("the drawing is too large to decode safely") from None
    except Exception as e:  # Pillow's many ways of saying "not a good PNG"
        raise DrawingError(f"the drawing's picture is damaged ({type(e).__name__})") from None
