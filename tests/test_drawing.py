"""A drawing becomes a model input the way MNIST's digits were made: the strokes'
bounding box fitted into 20x20, anti-aliased, centred by centre of mass in 28x28."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from convae.data.drawing import (
    MAX_SIDE,
    PNG_DATA_URL,
    DrawingError,
    box_for,
    drawing_to_input,
    ink,
    mnist_style,
    read_png,
)

MNIST = (1, 28, 28)
HALF_PIXEL = 0.5 + 1e-6  # placed to the nearest pixel: at most half a pixel off


def pad(draw, size=(280, 280), mode="RGBA") -> np.ndarray:
    """A pad's picture: white strokes drawn by ``draw(ImageDraw)`` on opaque black."""
    img = Image.new(mode, size, (0, 0, 0, 255) if mode == "RGBA" else 0)
    draw(ImageDraw.Draw(img))
    return np.asarray(img)


def centre_of_mass(t: torch.Tensor) -> tuple[float, float]:
    t = t.double()
    ys, xs = torch.meshgrid(
        torch.arange(t.shape[0], dtype=torch.double),
        torch.arange(t.shape[1], dtype=torch.double),
        indexing="ij",
    )
    return float((t * ys).sum() / t.sum()), float((t * xs).sum() / t.sum())


def bounding_box(t: torch.Tensor) -> tuple[int, int]:
    rows = t.gt(0).any(1).nonzero().flatten()
    cols = t.gt(0).any(0).nonzero().flatten()
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return PNG_DATA_URL + base64.b64encode(buf.getvalue()).decode()


# ------------------------------------------------------------------ MNIST's recipe
def test_a_tall_stroke_fills_20_pixels_of_height_and_keeps_its_aspect():
    # a 40 x 200 bar (1 : 5) far off-centre in the pad's corner
    x = drawing_to_input(pad(lambda d: d.rectangle((10, 60, 49, 259), fill="white")), MNIST)
    assert x.shape == MNIST and x.dtype == torch.float32
    h, w = bounding_box(x[0])
    assert h == 20 and w == 4  # 200 -> 20, so 40 -> 4
    assert x.max() == 1 and x.min() == 0


def test_a_wide_stroke_fills_20_pixels_of_width():
    x = drawing_to_input(pad(lambda d: d.rectangle((20, 100, 259, 159), fill="white")), MNIST)
    h, w = bounding_box(x[0])
    assert w == 20 and h == 5  # 240 x 60 -> 20 x 5


@pytest.mark.parametrize(
    "shape",
    [
        lambda d: d.ellipse((30, 20, 120, 250), outline="white", width=18),  # an off-centre 0
        lambda d: d.line([(200, 30), (60, 250), (250, 250)], fill="white", width=20),  # a 2-ish
        lambda d: d.polygon([(10, 10), (270, 10), (10, 200)], fill="white"),  # lopsided, yet fits
    ],
)
def test_the_centre_of_mass_lands_on_the_centre_within_a_pixel(shape):
    x = drawing_to_input(pad(shape), MNIST)
    cy, cx = centre_of_mass(x[0])
    assert abs(cy - 13.5) <= HALF_PIXEL and abs(cx - 13.5) <= HALF_PIXEL, (cy, cx)


def test_shrinking_is_anti_aliased_into_grey_levels():
    x = drawing_to_input(
        pad(lambda d: d.line([(40, 40), (240, 250)], fill="white", width=9)), MNIST
    )
    ink_pixels = x[x > 0]
    grey = ((ink_pixels > 0.05) & (ink_pixels < 0.95)).sum().item()
    assert grey >= 10, "a diagonal stroke shrunk 10x must have grey edges"
    assert (x > 0.95).any()  # and its brightest pixel is full white


def test_a_faint_pen_still_reaches_full_white_and_a_fringe_does_not_widen_the_box():
    def draw(d):
        d.rectangle((100, 100, 139, 179), fill=(128, 128, 128, 255))  # grey ink, 40 x 80
        d.rectangle((0, 0, 279, 3), fill=(10, 10, 10, 255))  # a faint smudge on the edge

    x = drawing_to_input(pad(draw), MNIST)
    assert x.max() == 1
    assert bounding_box(x[0]) == (20, 10)


def test_transparent_background_counts_as_black():
    img = Image.new("RGBA", (100, 100), (255, 255, 255, 0))  # white but fully transparent
    ImageDraw.Draw(img).rectangle((40, 20, 59, 79), fill=(255, 255, 255, 255))
    x = drawing_to_input(np.asarray(img), MNIST)
    assert bounding_box(x[0]) == (20, 7)


def test_other_input_shapes_keep_the_proportion_and_fill_every_channel():
    picture = pad(lambda d: d.rectangle((100, 40, 179, 239), fill="white"))
    x = drawing_to_input(picture, (3, 32, 32))
    assert x.shape == (3, 32, 32)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert bounding_box(x[0])[0] == 23  # 20/28 of 32
    cy, cx = centre_of_mass(x[0])
    assert abs(cy - 15.5) <= HALF_PIXEL and abs(cx - 15.5) <= HALF_PIXEL
    assert bounding_box(drawing_to_input(picture, MNIST, box=28)[0])[0] == 28  # a full field


def test_the_box_follows_the_dataset():
    assert box_for("mnist", MNIST) == 20
    assert box_for("fashion-mnist", MNIST) == 28  # its pictures fill the field
    assert box_for("cifar10", (3, 32, 32)) == 23


def test_a_tiny_drawing_is_enlarged_to_the_box():
    x = drawing_to_input(np.pad(np.ones((2, 1), np.float32), 3), MNIST)
    assert bounding_box(x[0]) == (20, 10)


@pytest.mark.parametrize(
    "picture",
    [
        np.zeros((280, 280, 4), np.uint8),
        np.full((280, 280, 4), (255, 255, 255, 0), np.uint8),  # white, all transparent
        np.full((50, 50), 0.05, np.float32),  # fainter than any stroke
    ],
)
def test_an_empty_drawing_is_none_not_an_error(picture):
    assert drawing_to_input(picture, MNIST) is None
    assert mnist_style(ink(picture)) is None


# ------------------------------------------------------------------ hostile input
@pytest.mark.parametrize(
    ("picture", "message"),
    [
        ("not pixels", "must be an array"),
        ([[0, 1], [1, 0]], "must be an array"),
        (np.zeros((4, 4, 5), np.uint8), "1-4 channels"),
        (np.zeros((2, 4, 4, 4), np.uint8), "(height, width)"),
        (np.zeros((0, 10), np.uint8), "1 to 2048 pixels"),
        (np.zeros((MAX_SIDE + 1, 4), np.uint8), "1 to 2048 pixels"),
        (np.full((8, 8), np.nan, np.float32), "not NaN"),
        (np.full((8, 8), np.inf), "not NaN"),
        (np.full((8, 8), 2.0), "between 0 and 1"),
        (np.full((8, 8), -1, np.int64), "0 to 255"),
        (np.full((8, 8), 1000, np.int32), "0 to 255"),
        (np.full((8, 8), 1j), "must be numbers"),
        (np.array([["a"]]), "must be numbers"),
        (np.empty((8, 8), object), "must be numbers"),
    ],
)
def test_hostile_pictures_are_refused_with_a_message(picture, message):
    with pytest.raises(DrawingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        drawing_to_input(picture, MNIST)


def test_a_huge_array_is_refused_before_it_is_converted():
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.float64), (100_000, 100_000), (0, 0))
    with pytest.raises(DrawingError, match="1 to 2048 pixels"):
        ink(huge)  # a float64 copy would need 80 GB


@pytest.mark.parametrize("shape", [(2, 28, 28), (1, 0, 28), (4, 8, 8)])
def test_input_shapes_a_drawing_cannot_fill_are_refused(shape):
    with pytest.raises(DrawingError):
        drawing_to_input(np.ones((10, 10), np.float32), shape)


def test_a_box_larger_than_the_field_is_refused():
    with pytest.raises(DrawingError, match="box"):
        mnist_style(np.ones((10, 10), np.float32), (28, 28), 29)


# --------------------------------------------------------------------- the pad's PNG
def test_the_pads_png_is_read_back_pixel_for_pixel():
    picture = pad(lambda d: d.ellipse((30, 30, 200, 250), outline="white", width=20))
    back = read_png(data_url(Image.fromarray(picture)))
    assert back.shape == (280, 280, 4) and back.dtype == np.uint8
    assert np.array_equal(back, picture)
    assert read_png(data_url(Image.fromarray(picture[..., 0]))).shape == (280, 280, 4)  # grey


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "did not arrive as a PNG"),
        ("data:image/jpeg;base64,AAAA", "did not arrive as a PNG"),
        (PNG_DATA_URL + "not base64!", "damaged"),
        (PNG_DATA_URL + base64.b64encode(b"\x89PNG\r\n\x1a\n garbage").decode(), "damaged"),
        (PNG_DATA_URL + "A" * (6 * 1024 * 1024), "larger than 4 MB"),
    ],
)
def test_a_bad_data_url_is_refused(url, message):
    with pytest.raises(DrawingError, match=message):
        read_png(url)


def test_a_png_claiming_a_huge_size_is_refused_before_decoding():
    from test_images import blank_png

    url = PNG_DATA_URL + base64.b64encode(blank_png(5000, 4000)).decode()
    with pytest.raises(DrawingError, match="5000 x 4000 pixels"):
        read_png(url)


def test_a_decompression_bomb_is_refused():
    from test_images import blank_png

    url = PNG_DATA_URL + base64.b64encode(blank_png(30_000, 30_000)).decode()
    with pytest.raises(DrawingError, match="too large to decode safely"):
        read_png(url)
