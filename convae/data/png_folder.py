"""Dataset splits stored as image files, one folder per class (``<split>/<class>/...``).

Two kinds of folder are read this way, through the one decoder,
:func:`convae.data.images.decode_image`:

- the lossless PNG copy of CIFAR-10 (``CIFAR10-png/{train,test}/<class>/``): the same
  pixels as the official archive, another order. Every image must already be the
  dataset's size and kind (``exact``), so that the pixels are the official ones;
- a user's image folder (:mod:`convae.data.folders`): any size, resized to the shape.

Decoding 50,000 small PNGs takes about ten seconds, so a decoded split is kept in the
cache folder as one tensor file, keyed by the files' names, sizes and times: changed
files are decoded again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from convae.base.errors import DatasetError
from convae.base.files import kept
from convae.data.images import ImageError, decode_image, probe_image

Decoded = tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]  # images, labels, classes
Progress = Callable[[int, int], None]  # (images done, images in all)


@dataclass(frozen=True)
class ImageFile:
    """One image of a split: its class, its name in messages, and how to read it."""

    label: int
    name: str  # e.g. "train/cat/cat_1.png": what an error message names
    read: Callable[[], bytes]


def decode_files(
    files: Sequence[ImageFile],
    shape: tuple[int, int, int],
    *,
    exact: bool,
    on_progress: Progress | None = None,
    done: int = 0,
    total: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every file: images (N, C, H, W) uint8 and labels (N,) int64, in order.

    Args:
        exact: every image must be a PNG of exactly ``shape`` (grey or RGB as its
            channels say); otherwise any picture is cropped and resized to it.
        on_progress: called after each image with (done + images so far, total).
        done, total: where this call's images stand in a longer job (for progress).

    Raises:
        DatasetError: a file that is not a picture, or (``exact``) not of the shape;
            the message names it.
    """
    c, h, w = shape
    total = len(files) if total is None else total
    images = torch.empty((len(files), c, h, w), dtype=torch.uint8)
    want_mode = "RGB" if c == 3 else "L"
    for i, f in enumerate(files):
        try:
            data = f.read()
            if exact:
                head = probe_image(data)
                if (head.width, head.height) != (w, h) or head.mode != want_mode:
                    raise DatasetError(
                        f"{f.name} is {head.width}x{head.height} {head.mode}; expected "
                        f"{w}x{h} {want_mode} like the rest of the dataset"
                    )
            images[i] = decode_image(data, shape)
        except ImageError as e:
            raise DatasetError(f"{f.name}: {e}") from None
        except OSError as e:
            raise DatasetError(f"{f.name} could not be read: {e.strerror or e}") from None
        if on_progress is not None:
            on_progress(done + i + 1, total)
    labels = torch.tensor([f.label for f in files], dtype=torch.int64)
    return images, labels


def cache_key(split: Path, files: Iterable[Path], *extra: str) -> str:
    """Changes when any file is renamed, resized or touched (or ``extra`` changes)."""
    h = hashlib.sha1(str(split.resolve()).encode())
    for e in extra:
        h.update(f"{e}\n".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(split)} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cached(path: Path, make: Callable[[], Decoded]) -> Decoded:
    """The split saved in ``path`` if it is there and whole, else ``make()`` (saved for
    next time where the cache folder can be written; made by one process at a time)."""

    def as_dict() -> dict[str, Any]:
        images, labels, classes = make()
        return {"images": images, "labels": labels, "classes": list(classes)}

    saved = kept(path, as_dict)
    return saved["images"], saved["labels"], tuple(saved["classes"])


def _listing(split: Path) -> tuple[list[str], list[tuple[int, Path]]]:
    classes = sorted(d.name for d in split.iterdir() if d.is_dir())
    files = [
        (label, f) for label, c in enumerate(classes) for f in sorted((split / c).glob("*.png"))
    ]
    return classes, files


def load_png_split(split: Path, shape: tuple[int, int, int], cache: Path) -> Decoded:
    """Every PNG of ``split``: images (N, C, H, W) uint8, labels (N,), class names.

    Classes are the subfolders in name order (for CIFAR-10 that is its official order,
    airplane to truck); images within a class are in file-name order.

    Raises:
        DatasetError: no classes or no images, or an image of another size or kind.
    """
    if not split.is_dir():
        raise DatasetError(f"{split} is not a folder")
    classes, files = _listing(split)
    if not files:
        raise DatasetError(f"{split} holds no class folders with PNG images")
    key = cache_key(split, (f for _, f in files))

    def decode() -> Decoded:
        listed = [ImageFile(label, str(f), f.read_bytes) for label, f in files]
        images, labels = decode_files(listed, shape, exact=True)
        return images, labels, tuple(classes)

    return cached(cache / f"{split.parent.name}-{split.name}-{key}.pt", decode)
