"""A dataset split stored as PNG files, one folder per class (``<split>/<class>/*.png``).

The lossless PNG copy of CIFAR-10 is laid out so (``CIFAR10-png/{train,test}/<class>/``):
the same pixels as the official archive, another order. Decoding 50,000 small PNGs takes
about ten seconds, so the decoded split is kept in the cache folder as one tensor file,
keyed by the files' names, sizes and times: changed files are decoded again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import DatasetError


def _listing(split: Path) -> tuple[list[str], list[tuple[int, Path]]]:
    classes = sorted(d.name for d in split.iterdir() if d.is_dir())
    files = [
        (label, f) for label, c in enumerate(classes) for f in sorted((split / c).glob("*.png"))
    ]
    return classes, files


def _key(split: Path, files: list[tuple[int, Path]]) -> str:
    h = hashlib.sha1(str(split.resolve()).encode())
    for _, f in files:
        st = f.stat()
        h.update(f"{f.parent.name}/{f.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def load_png_split(
    split: Path, shape: tuple[int, int, int], cache: Path
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
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
    cached = cache / f"{split.parent.name}-{split.name}-{_key(split, files)}.pt"
    if cached.is_file():
        try:
            saved = torch.load(cached, weights_only=True)
            return saved["images"], saved["labels"], tuple(saved["classes"])
        except Exception:  # a damaged cache file is decoded again
            pass
    c, h, w = shape
    images = np.empty((len(files), h, w, c), np.uint8)
    for i, (_, f) in enumerate(files):
        try:
            with Image.open(f) as im:
                if im.size != (w, h) or im.mode != ("RGB" if c == 3 else "L"):
                    raise DatasetError(
                        f"{f} is {im.size[0]}x{im.size[1]} {im.mode}; expected {w}x{h} "
                        f"{'RGB' if c == 3 else 'L'} like the rest of the dataset"
                    )
                images[i] = np.asarray(im).reshape(h, w, c)
        except DatasetError:
            raise
        except Exception as e:
            raise DatasetError(f"{f} could not be read as a PNG ({type(e).__name__})") from e
    out = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for label, _ in files], dtype=torch.int64)
    try:  # atomically: a half-written cache file is never read
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
        torch.save({"images": out, "labels": labels, "classes": list(classes)}, tmp)
        tmp.replace(cached)
    except OSError:
        pass  # no cache: decoded again next time
    return out, labels, tuple(classes)
