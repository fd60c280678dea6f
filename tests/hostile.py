"""Hostile (and awkward but valid) files a visitor can upload, shared by the reliability
tests. Everything is generated in memory: nothing to ship."""

from __future__ import annotations

import functools
import io
import os
import pickle
import random
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from convae import ModelConfig, build_model
from convae.nn.checkpoint import FORMAT, to_bytes

ROOT = Path(__file__).resolve().parents[1]
MNIST = (1, 28, 28)
MNIST_FILE = "MNIST/raw/t10k-images-idx3-ubyte.gz"


class RunsCode:
    """Unpickling this runs a shell command: the classic pickle exploit."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def torch_bytes(obj, **kwargs) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    return buf.getvalue()


def deflated(data: bytes) -> bytes:
    """The same torch zip with its entries compressed (torch.load reads those too)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info.filename))
    return out.getvalue()


def flip_a_weight_byte(data: bytes) -> bytes:
    """``data`` with one byte changed inside the largest stored tensor, headers intact."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    # a stored entry's bytes follow its 30-byte local header, name and extra field
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


def hostile_checkpoints(marker: Path) -> dict[str, bytes]:
    """Every kind of wrong file a visitor can upload as a checkpoint, by file name."""
    good = to_bytes(build_model(ModelConfig("conv-upsample"), seed=0), {"dataset": "mnist"})
    evil = {"format": FORMAT, "format_version": 1, "model": RunsCode(marker)}
    giant = {
        "format": FORMAT,
        "format_version": 1,
        "state_dict": {},
        "meta": {},
        # 1.5 KB that once made the server allocate 1.25 GB before looking at weights
        "model": {"arch": "linear", "in_shape": [1, 28, 28], "hidden": 200_000},
    }
    mixed = {
        "format": FORMAT,
        "format_version": 1,
        "meta": {},
        "model": ModelConfig("conv-upsample").to_dict(),
        "state_dict": build_model(ModelConfig("conv-deep"), seed=0).state_dict(),
    }
    zeros = {
        "format": FORMAT,
        "format_version": 1,
        "meta": {},
        "model": ModelConfig("conv-upsample").to_dict(),
        "state_dict": {"pad": torch.zeros(1_000_000)},
    }
    rng = random.Random(0)
    return {
        "evil-torch-zip.pt": torch_bytes(evil),
        "evil-pickle.pt": pickle.dumps(evil),
        "evil-pickle-protocol2.pt": pickle.dumps(evil, protocol=2),
        "evil-legacy-torch.pt": torch_bytes(evil, _use_new_zipfile_serialization=False),
        "random.pt": rng.randbytes(4096),
        "random-zip-header.pt": b"PK\x03\x04" + rng.randbytes(4096),
        "empty.pt": b"",
        "text.pt": b"import os; os.system('echo hi')\n",
        "truncated.pt": good[: len(good) // 2],
        "flipped-byte.pt": flip_a_weight_byte(good),
        "cifar-model.pt": to_bytes(build_model(ModelConfig("conv-upsample", (3, 32, 32)))),
        "other-arch-weights.pt": torch_bytes(mixed),
        "plain-state-dict.pt": torch_bytes(build_model(ModelConfig("linear")).state_dict()),
        "giant-config.pt": torch_bytes(giant),
        "deflate-bomb.pt": deflated(torch_bytes(zeros)),
    }


def png(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


@functools.lru_cache
def blank_png(width: int, height: int, rows: int | None = None) -> bytes:
    """A black greyscale PNG claiming ``width`` x ``height`` pixels in a tiny file (a
    decompression bomb); with ``rows``, only that many rows of data follow (faster to
    make: whoever trusts the header allocates the whole picture all the same)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    comp = zlib.compressobj(9)
    row = bytes(width + 1)
    idat = b"".join(comp.compress(row) for _ in range(rows or height)) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def digit(mode: str = "L", size=(60, 40)) -> Image.Image:
    img = Image.new("L", size, 0)
    img.paste(255, (20, 10, 40, 30))
    return img.convert(mode)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n(pwned) print showpage\n%%EOF\n"


def hostile_images() -> dict[str, bytes]:
    good_png = png(digit())
    jpeg = png(digit("RGB", (300, 200)), "JPEG")
    return {
        "evil.png": b"#!/bin/sh\nrm -rf / --no-preserve-root\n",
        "empty.png": b"",
        "truncated.png": good_png[: len(good_png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "bomb.png": blank_png(30000, 30000, rows=16),  # 900 M pixels in a few hundred KB
        "too-many-pixels.png": blank_png(7000, 7000),  # under Pillow's limit, over ours
        "postscript.png": EPS,  # Pillow would hand it to Ghostscript
        "svg.png": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    }


def good_images() -> dict[str, bytes]:
    rgba = digit("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255))
    pal_t = digit("P")
    pal_t.info["transparency"] = 0
    i16 = Image.fromarray(np.asarray(digit()).astype(np.uint16) * 257)
    return {
        "grey.png": png(digit()),
        "one-bit.png": png(digit("1")),
        "grey-16bit.png": png(i16),
        "palette.png": png(digit("P")),
        "palette-transparent.png": png(pal_t),
        "rgba.png": png(rgba),
        "cmyk.jpg": png(digit("CMYK"), "JPEG"),
        "photo.jpg": png(digit("RGB", (4000, 3000)), "JPEG", quality=50),
        "large.png": png(Image.new("RGB", (3000, 2000), (9, 9, 9))),
        "tiny.png": png(Image.new("L", (1, 1), 255)),
        "wide.png": png(Image.new("L", (500, 3), 128)),
    }


# ------------------------------------------------------------------ image folders
def folder_pictures(
    classes=("circles", "squares"), train: int = 6, test: int = 2, colour: bool = True
) -> dict[str, bytes]:
    """An image folder as {path: file}: train/<class>/ and test/<class>/, PNG and JPEG
    pictures of assorted sizes (each class its own brightness, so labels can be told)."""
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", train), ("test", test)):
        for c, name in enumerate(classes):
            for i in range(n):
                size = (40 + 7 * i, 30 + 5 * c)
                base = 60 + c * 120 // max(1, len(classes) - 1)
                pixels = rng.integers(base - 40, base + 40, (size[1], size[0], 3), dtype=np.uint8)
                img = Image.fromarray(pixels if colour else pixels[..., 0])
                fmt = "JPEG" if i % 3 == 2 else "PNG"
                files[f"{split}/{name}/{i}.{fmt.lower()}"] = png(img, fmt)
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def zipped(files: dict[str, bytes], top: str = "", method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """``files`` in a zip, under the folder ``top`` if given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for path, data in files.items():
            z.writestr(f"{top}/{path}" if top else path, data)
    return buf.getvalue()


def _with_entry(info: zipfile.ZipInfo, data: bytes) -> bytes:
    """A good image folder plus one crafted entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, content in folder_pictures().items():
            z.writestr(path, content)
        z.writestr(info, data)
    return buf.getvalue()


def _lying_size(data: bytes) -> bytes:
    """``data`` (a zip) with its first entry's central-directory size made 10 bytes
    smaller than its real size: whoever trusts it reads a wrong picture."""
    at = data.index(b"PK\x01\x02")  # the first central-directory entry
    size = struct.unpack("<I", data[at + 24 : at + 28])[0]
    return data[: at + 24] + struct.pack("<I", size - 10) + data[at + 28 :]


def _encrypted(data: bytes) -> bytes:
    """``data`` (a zip) with its first entry flagged as encrypted (zipfile cannot write
    one): the flag bit in its central-directory entry."""
    at = data.index(b"PK\x01\x02") + 8
    flags = struct.unpack("<H", data[at : at + 2])[0] | 0x1
    return data[:at] + struct.pack("<H", flags) + data[at + 2 :]


@functools.lru_cache
def hostile_zips() -> dict[str, tuple[bytes, str]]:
    """Every kind of bad zip a visitor can upload as an image folder, by file name, with
    a part of the message that refuses it."""
    good = folder_pictures()
    symlink = zipfile.ZipInfo("train/circles/link.png")
    symlink.external_attr = 0o120777 << 16  # S_IFLNK: a symbolic link to /etc/passwd
    fifo = zipfile.ZipInfo("train/circles/pipe.png")
    fifo.external_attr = 0o010644 << 16  # S_IFIFO
    zeros = bytes(20_000_000)  # 20 MB that deflate to 20 KB
    many = {f"train/circles/{i}.png": b"x" for i in range(7000)}
    stored = zipped(good, method=zipfile.ZIP_STORED)
    return {
        "not-a-zip.zip": (random.Random(0).randbytes(5000), "not a zip file"),
        "empty.zip": (b"", "not a zip file"),
        "ratio-bomb.zip": (zipped({**good, "train/circles/bomb.png": zeros}), "zip bomb"),
        "declared-bomb.zip": (
            zipped({**good, **{f"train/circles/b{i}.png": zeros for i in range(4)}}),
            "would unpack to",
        ),
        "lying-size.zip": (_lying_size(stored), "cannot be read"),
        "absolute-path.zip": (_with_entry(zipfile.ZipInfo("/etc/cron.d/x.png"), b"x"), "absolute"),
        "windows-path.zip": (_with_entry(zipfile.ZipInfo("C:\\Windows\\x.png"), b"x"), "absolute"),
        "dot-dot.zip": (
            _with_entry(zipfile.ZipInfo("train/circles/../../../../tmp/x.png"), b"x"),
            "'..'",
        ),
        "symlink.zip": (_with_entry(symlink, b"/etc/passwd"), "symbolic link"),
        "fifo.zip": (_with_entry(fifo, b""), "special file"),
        "encrypted.zip": (_encrypted(zipped(good)), "encrypted"),
        "tiny-files.zip": (zipped(many), "entries"),
        "non-image.zip": (zipped({**good, "train/squares/notes.txt": b"hello"}), "not an image"),
        "disguised.zip": (zipped({**good, "train/squares/evil.png": EPS}), "not a picture"),
        "png-bomb.zip": (
            zipped({**good, "train/squares/bomb.png": blank_png(30000, 30000, rows=16)}),
            "too large to decode",
        ),
        "no-train.zip": (
            zipped({p.replace("train/", "training/"): d for p, d in good.items()}),
            "no train/",
        ),
        "no-classes.zip": (
            zipped({"train/a.png": good["train/circles/0.png"], **good}),
            "not in a class folder",
        ),
        "too-big.zip": (random.Random(1).randbytes(10_000_001), "MB"),
    }
