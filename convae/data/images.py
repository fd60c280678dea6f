"""Turning an uploaded picture into a model input, safely.

Any picture a user gives (an upload, an image folder's files) goes through
:func:`decode_image` (or :func:`image_to_tensor`, its float form): it refuses what is not
a picture, truncated files and decompression bombs (a tiny file that claims a huge size),
and converts every mode Pillow reads (grey, 16-bit, palette, RGBA, CMYK, ...) to the
model's channels and size.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from convae.base.errors import ConvaeError
from convae.base.tensors import to_unit_float

SUPPORTED_CHANNELS = (1, 3)  # greyscale (MNIST, Fashion-MNIST) or RGB (CIFAR-10)
SUPPORTED_SIZES = (28, 32)  # MNIST-like 28x28, CIFAR-10 32x32
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # ~6300 x 6300: any real photo; refuses decompression bombs
DECODE_SLOTS = 2  # pictures decoded at once, all sessions together: bounds server memory
DECODE_WAIT_S = 60
_decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)
# modes Image.reduce averages correctly (it would average palette indices of P / PA)
_REDUCIBLE = ("L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F")
# Only plain raster formats are even parsed, whatever the file's name: Pillow would hand
# an EPS file (PostScript: a program) to Ghostscript, and rare formats are rarely fuzzed.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


class ImageError(ConvaeError):
    """An upload that is not a usable picture."""


@dataclass(frozen=True)
class Header:
    """What a picture's header says, read without decoding its pixels."""

    width: int
    height: int
    mode: str  # Pillow's mode: "L", "RGB", "P", ...
    format: str  # "PNG", "JPEG", ...
    grey: bool  # stored as grey (1-bit, 8/16-bit grey, grey + alpha, a grey palette)


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def probe_image(data: bytes) -> Header:
    """The picture's size and kind from its header, with the checks of
    :func:`decode_image` that need no pixels (size of the file, format, pixel count).

    A palette picture's palette is read to tell grey from colour (it sits before the
    pixels in the file).

    Raises:
        ImageError: empty, too large, not a picture, or too many pixels.
    """
    _check_bytes(data)
    with _opened(data) as im:
        grey = im.mode in GREY_MODES
        if im.mode in ("P", "PA"):
            palette = im.palette.colors if im.palette is not None else {}
            grey = all(len(set(rgb[:3])) == 1 for rgb in palette)
        return Header(im.width, im.height, im.mode, im.format or "", grey)


def decode_image(data: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
    """Decode ``data`` into (C, H, W) uint8 pixels.

    The picture is converted to grey (C = 1) or RGB (C = 3), its transparency composited
    on black (MNIST's background), its centre square cropped and resized to H x W
    (Lanczos): for a square H x W that is "resize the shorter side, then centre-crop".
    A picture of exactly H x W in the right mode keeps its pixels unchanged.

    Raises:
        ImageError: empty, too large, not a picture, truncated, or too many pixels.
    """
    c, h, w = shape
    _check_bytes(data)
    # A 150 KB PNG can decode to 6000 x 6000 RGBA (144 MB, more while converting): a
    # room full of uploads at once must not add up, so only a few decode at a time.
    if not _decode_slots.acquire(timeout=DECODE_WAIT_S):
        raise ImageError("the server is busy decoding other pictures; try again in a moment")
    try:
        with _opened(data) as opened:
            opened.draft(None, (4 * max(h, w),) * 2)  # JPEG: decode at 1/2 to 1/8 scale
            opened.load()  # decodes now, so truncation errors surface here
            # new images, so they outlive the file, which the with-block closes
            picture = _to_mode(_square(opened, max(h, w)), "L" if c == 1 else "RGB")
        if picture.size != (w, h):
            picture = picture.resize((w, h), Image.Resampling.LANCZOS)
        # (C, H, W) uint8, as torchvision's pil_to_tensor gives it, without importing
        # torchvision (1-2 s, in every process that decodes its first picture)
        pixels = np.array(picture, dtype=np.uint8).reshape(h, w, c)
        return torch.from_numpy(pixels).permute(2, 0, 1)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"the picture is too large to decode safely ({_first_line(e)})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"the picture is damaged or truncated ({_first_line(e)})") from None
    finally:
        _decode_slots.release()


def image_to_tensor(data: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
    """:func:`decode_image` as a (C, H, W) float tensor in [0, 1] (a model's input)."""
    return to_unit_float(decode_image(data, shape))


def _check_bytes(data: bytes) -> None:
    if not data:
        raise ImageError("the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(
            f"the file is {len(data) / 1e6:.1f} MB; pictures up to "
            f"{MAX_UPLOAD_BYTES / 1e6:.0f} MB are accepted"
        )


@contextmanager
def _opened(data: bytes) -> Iterator[Image.Image]:
    """The picture opened lazily (header only), refused if its format is not a plain
    raster one or it claims more than MAX_PIXELS; every Pillow failure as an ImageError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as opened:
                if opened.width * opened.height > MAX_PIXELS:
                    raise ImageError(
                        f"the picture claims {opened.width} x {opened.height} pixels, more "
                        f"than {MAX_PIXELS:,} allowed; it may be a decompression bomb"
                    )
                yield opened
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(
            "the file is not a picture Pillow can read; upload a PNG or JPEG"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"the picture is too large to decode safely ({_first_line(e)})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"the picture is damaged or truncated ({_first_line(e)})") from None


def _square(img: Image.Image, size: int) -> Image.Image:
    """The centre square, already shrunk by a whole factor where that keeps at least
    4x the final ``size`` (the final resize does the rest), so that no full-size copy
    of a huge picture is made in another mode."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    box = (left, top, left + side, top + side)
    factor = side // (4 * size)
    if img.mode in ("I;16", "I;16B", "I;16L") and factor >= 2:
        img = img.convert("I")  # Image.reduce does not take 16-bit modes
    if factor >= 2 and img.mode in _REDUCIBLE:
        return img.reduce(factor, box=box)
    return img.crop(box)


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit grey: scale to 8 bits
        arr = torch.as_tensor(__import__("numpy").asarray(img, dtype="float32"))
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else arr * 0
        img = Image.fromarray(arr.round().clamp(0, 255).byte().numpy(), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert(mode)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else type(e).__name__
