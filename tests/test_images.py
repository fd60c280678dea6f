import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from convae.data.images import MAX_PIXELS, MAX_UPLOAD_BYTES, ImageError, image_to_tensor

SHAPES = [(1, 28, 28), (3, 32, 32)]


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def square() -> Image.Image:
    """A white square on black, off-square canvas (40x30) so cropping matters."""
    img = Image.new("L", (40, 30), 0)
    ImageDraw.Draw(img).rectangle((12, 8, 28, 22), fill=255)
    return img


def in_mode(mode: str) -> tuple[bytes, str]:
    """The square saved so that Pillow reopens it in ``mode``."""
    base = square()
    if mode == "CMYK":
        return encode(base.convert("RGB").convert("CMYK"), "JPEG"), "CMYK"
    if mode == "I;16":
        return encode(Image.fromarray(np.asarray(base).astype(np.uint16) * 257)), "I;16"
    if mode == "P":
        return encode(base.convert("RGB").convert("P")), "P"
    return encode(base.convert(mode)), mode


def blank_png(width: int, height: int) -> bytes:
    """A valid all-black greyscale PNG, built row by row: a huge image in a small file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor = zlib.compressobj(1)
    row = bytes(width + 1)  # filter byte + one black pixel per column
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def centre_and_corners(t: torch.Tensor) -> tuple[float, float]:
    _, h, w = t.shape
    centre = t[:, h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].mean().item()
    corners = torch.stack([t[:, :3, :3], t[:, :3, -3:], t[:, -3:, :3], t[:, -3:, -3:]]).mean()
    return centre, corners.item()


@pytest.mark.parametrize("shape", SHAPES, ids=["grey28", "rgb32"])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "I;16", "1", "LA"])
def test_every_pillow_mode_converts_keeping_the_picture(mode, shape):
    data, expected_mode = in_mode(mode)
    assert Image.open(io.BytesIO(data)).mode == expected_mode  # the case is what it claims
    t = image_to_tensor(data, shape)
    assert t.shape == shape and t.dtype == torch.float32
    assert t.min() >= 0 and t.max() <= 1
    centre, corners = centre_and_corners(t)
    assert centre > 0.9 and corners < 0.1


def test_a_drawn_digit_comes_out_bright_in_the_centre_on_black():
    img = Image.new("L", (200, 200), 0)
    draw = ImageDraw.Draw(img)
    draw.line((70, 40, 130, 40), fill=255, width=16)  # a "7"
    draw.line((130, 40, 90, 165), fill=255, width=16)
    t = image_to_tensor(encode(img), (1, 28, 28))
    centre, corners = centre_and_corners(t)
    assert centre > 0.2 and corners == 0
    assert t.max() > 0.9


def test_transparency_is_composited_on_black():
    img = Image.new("RGBA", (32, 32), (255, 255, 255, 0))  # invisible white
    ImageDraw.Draw(img).rectangle((8, 8, 23, 23), fill=(255, 255, 255, 255))
    t = image_to_tensor(encode(img), (3, 32, 32))
    centre, corners = centre_and_corners(t)
    assert corners == 0 and centre == 1


def test_sixteen_bit_grey_is_stretched_to_the_full_range():
    arr = np.full((10, 10), 1000, dtype=np.uint16)
    arr[3:7, 3:7] = 3000
    t = image_to_tensor(encode(Image.fromarray(arr)), (1, 28, 28))
    assert t.min() == 0 and t.max() == 1


def test_colour_is_kept_for_rgb_models():
    t = image_to_tensor(encode(Image.new("RGB", (8, 8), (255, 0, 0))), (3, 32, 32))
    assert t[0].min() == 1 and t[1].max() == 0 and t[2].max() == 0


@pytest.mark.parametrize("size", [(1, 1), (1, 50), (6000, 6000)], ids=["1x1", "1x50", "6000x6000"])
def test_tiny_and_large_allowed_pictures_convert(size):
    assert size[0] * size[1] <= MAX_PIXELS
    data = blank_png(*size) if size[0] > 100 else encode(Image.new("L", size, 200))
    t = image_to_tensor(data, (1, 28, 28))
    assert t.shape == (1, 28, 28)
    assert torch.allclose(t, torch.full_like(t, 0 if size[0] > 100 else 200 / 255))


def test_empty_bytes():
    with pytest.raises(ImageError, match="the file is empty"):
        image_to_tensor(b"", (1, 28, 28))


@pytest.mark.parametrize(
    "data", [b"hello, I am text", b"%PDF-1.4\n" + bytes(200), b"\x89PNG\r\n\x1a\n" + bytes(10)]
)
def test_not_a_picture(data):
    with pytest.raises(ImageError, match="not a picture Pillow can read"):
        image_to_tensor(data, (1, 28, 28))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_pictures(fmt):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))
    data = encode(img, fmt)
    with pytest.raises(ImageError, match="damaged or truncated"):
        image_to_tensor(data[: len(data) // 2], (1, 28, 28))


@pytest.mark.parametrize(
    "side, message",
    [
        (7000, r"claims 7000 x 7000 pixels, more than 40,000,000 allowed; .*decompression bomb"),
        (10000, r"too large to decode safely"),  # Pillow's warning band
        (20000, r"too large to decode safely .*decompression bomb"),  # Pillow's own limit
    ],
)
def test_decompression_bombs_are_refused(side, message):
    data = blank_png(side, side)
    assert len(data) < MAX_UPLOAD_BYTES  # small file, huge picture
    with pytest.raises(ImageError, match=message):
        image_to_tensor(data, (1, 28, 28))


def test_files_over_the_upload_limit():
    with pytest.raises(ImageError, match=r"MB; pictures up to 10 MB are accepted"):
        image_to_tensor(bytes(MAX_UPLOAD_BYTES + 1), (1, 28, 28))
