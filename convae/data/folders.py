"""Any folder of images as a dataset, laid out as torchvision's ``ImageFolder`` expects::

    PATH/train/<class>/<image>    one folder per class: its name is the class's name
    PATH/test/<class>/<image>     images the model never trains on, to measure it

Named ``folder:PATH`` wherever a dataset is named (``load_dataset``, ``--dataset``). The
rules, the same for a folder on disk and a zip uploaded to the app
(:mod:`convae.data.zip_folder`):

- **Classes** are ``train/``'s subfolders, in name order; ``test/`` holds some of them
  (none other). Every class folder must hold at least one image; images may sit in
  subfolders of their class folder.
- **Images** are PNG, JPEG, GIF, BMP, WEBP or TIFF files (by their extension, and read
  only as those formats whatever their content). Any other file in a class folder is
  **refused**, by name: a stray file is usually a mistake, and training on fewer
  images than one thinks, silently, is worse. Hidden files (``.DS_Store``, names
  starting with a dot) and what operating systems leave behind (``__MACOSX/``,
  ``Thumbs.db``, ``desktop.ini``) are ignored, and so is anything beside ``train/``
  and ``test/`` (a README). Symbolic links are refused: only plain files are read.
- **Shape**: grey pictures (every one stored as grey) become 1x28x28, any colour
  picture makes the dataset 3x32x32; or the shape is given (C in 1, 3; 28x28 or 32x32).
  Each picture is cut to its centre square and resized to the shape (Lanczos): that is,
  its shorter side is resized and the longer one centre-cropped; transparency is
  composited on black.
- **Order**: a fixed shuffle of the images (the same every time), so that the first N
  (what the Train page's "images to use" takes) are a sample of every class.
- **Size** is bounded (:class:`FolderLimits`): images, files, bytes, and pixels per
  picture (:data:`convae.data.images.MAX_PIXELS`); a larger folder is refused before any
  picture is decoded.

Loaded once into memory as uint8, like the other datasets; a folder on disk is decoded
once and kept in the cache folder (like CIFAR-10's PNG copy).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from convae.base.errors import DatasetError
from convae.data.images import (
    MAX_UPLOAD_BYTES,
    SUPPORTED_CHANNELS,
    SUPPORTED_SIZES,
    ImageError,
    probe_image,
)
from convae.data.png_folder import Decoded, ImageFile, Progress, cache_key, cached, decode_files

PREFIX = "folder:"
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
IGNORED_NAMES = ("__MACOSX", "Thumbs.db", "desktop.ini")
GREY_SHAPE = (1, 28, 28)  # MNIST-like
COLOUR_SHAPE = (3, 32, 32)  # CIFAR-10-like
ORDER_SEED = 0


@dataclass(frozen=True)
class FolderLimits:
    """What a folder may hold at most (a larger one is refused, with these numbers).

    Attributes:
        images: images in both splits together.
        entries: files and folders looked at (ignored ones too): bounds the listing.
        bytes: all images' files together.
        file_bytes: one image file.
    """

    images: int = 20_000
    entries: int = 30_000
    bytes: int = 1_000_000_000
    file_bytes: int = MAX_UPLOAD_BYTES


@dataclass(frozen=True)
class Entry:
    """A file of the tree, by its path relative to the dataset's root."""

    path: str  # "/"-separated, e.g. "train/cat/cat_1.png"
    size: int
    read: Callable[[], bytes]


@dataclass
class Tree:
    """What a dataset's root holds: its folders and files (relative "/" paths)."""

    where: str  # the folder or the zip, for messages
    folders: set[str] = field(default_factory=set)
    files: list[Entry] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """A checked tree: the classes, and each split's images in their final order."""

    classes: tuple[str, ...]
    splits: dict[str, list[tuple[int, Entry]]]

    @property
    def count(self) -> int:
        return sum(len(files) for files in self.splits.values())


def is_folder_name(name: str) -> bool:
    return name.startswith(PREFIX)


def folder_path(name: str) -> Path:
    """The folder a ``folder:PATH`` name names (refused if PATH is empty)."""
    path = name[len(PREFIX) :]
    if not path:
        raise DatasetError("folder: needs a path, e.g. folder:my_images (holding train/ and test/)")
    return Path(path).expanduser()


def ignored(name: str) -> bool:
    """Hidden files and operating systems' litter: never part of a dataset."""
    return name.startswith(".") or name in IGNORED_NAMES


def check_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A shape the architectures take (C in 1, 3; H = W in 28, 32), else DatasetError."""
    shape = tuple(int(v) for v in shape)
    if (
        len(shape) != 3
        or shape[0] not in SUPPORTED_CHANNELS
        or shape[1] != shape[2]
        or shape[1] not in SUPPORTED_SIZES
    ):
        raise DatasetError(
            f"unsupported shape {'x'.join(map(str, shape))}: use 1x28x28, 1x32x32, 3x28x28 "
            "or 3x32x32"
        )
    c, h, w = shape
    return c, h, w


# --------------------------------------------------------------------- on disk
def disk_tree(root: Path, limits: FolderLimits = FolderLimits()) -> Tree:
    """The files under ``root/train`` and ``root/test`` (what else is there is not
    looked at), never following a symbolic link.

    Raises:
        DatasetError: ``root`` is not a folder, a symbolic link, or too many entries.
    """
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder (an image folder holds train/ and test/)")
    tree = Tree(str(root))
    seen = 0
    pending = [(root / s, s) for s in SPLITS if (root / s).is_dir()]
    for split_dir, split in pending:
        if split_dir.is_symlink():
            raise DatasetError(
                f"{split}/ in {root} is a symbolic link; only plain folders are read"
            )
        tree.folders.add(split)
    while pending:
        where, rel = pending.pop()
        with os.scandir(where) as entries:
            for e in entries:
                seen += 1
                if seen > limits.entries:
                    raise DatasetError(
                        f"{root} is too large: more than {limits.entries:,} files and folders "
                        f"in train/ and test/ (at most {limits.images:,} images are taken)"
                    )
                if ignored(e.name):
                    continue
                path = f"{rel}/{e.name}"
                if e.is_symlink():
                    raise DatasetError(
                        f"{path} in {root} is a symbolic link; only plain files are read"
                    )
                if e.is_dir(follow_symlinks=False):
                    tree.folders.add(path)
                    pending.append((Path(e.path), path))
                elif e.is_file(follow_symlinks=False):
                    size = e.stat(follow_symlinks=False).st_size
                    tree.files.append(Entry(path, size, Path(e.path).read_bytes))
                else:
                    raise DatasetError(f"{path} in {root} is not a plain file")
    return tree


# ------------------------------------------------------------------- checking
def plan(tree: Tree, limits: FolderLimits = FolderLimits()) -> Plan:
    """Check the layout and the limits, before any picture is decoded.

    Raises:
        DatasetError: one line naming what is wrong (see the module's rules).
    """
    where = tree.where
    for split in SPLITS:
        if split not in tree.folders:
            raise DatasetError(
                f"no {split}/ folder in {where}: an image folder holds train/<class>/ "
                "and test/<class>/, one folder of images per class"
            )
    classes = tuple(
        sorted(
            f.split("/")[1] for f in tree.folders if f.startswith("train/") and f.count("/") == 1
        )
    )
    if not classes:
        raise DatasetError(
            f"train/ in {where} has no class folders: put each class's images in "
            "train/<class name>/"
        )
    index = {c: i for i, c in enumerate(classes)}
    for folder in sorted(tree.folders):
        parts = folder.split("/")
        if len(parts) == 2 and parts[0] == "test" and parts[1] not in index:
            raise DatasetError(
                f"test/{parts[1]}/ in {where} is a class that train/ does not have "
                f"(train/ has: {', '.join(classes)})"
            )
    splits: dict[str, list[tuple[int, Entry]]] = {s: [] for s in SPLITS}
    total_bytes = 0
    for entry in sorted(tree.files, key=lambda e: e.path):
        parts = entry.path.split("/")
        if parts[0] not in SPLITS:
            continue  # beside train/ and test/: a README, not data
        if len(parts) == 2:
            raise DatasetError(
                f"{entry.path} in {where} is not in a class folder: put it in "
                f"{parts[0]}/<class name>/"
            )
        if not entry.path.lower().endswith(IMAGE_SUFFIXES):
            raise DatasetError(
                f"{entry.path} in {where} is not an image (PNG, JPEG, GIF, BMP, WEBP or "
                "TIFF); remove it"
            )
        if entry.size > limits.file_bytes:
            raise DatasetError(
                f"{entry.path} in {where} is {entry.size / 1e6:.1f} MB; images up to "
                f"{limits.file_bytes / 1e6:.0f} MB are taken"
            )
        total_bytes += entry.size
        splits[parts[0]].append((index[parts[1]], entry))
    n = sum(len(v) for v in splits.values())
    if n > limits.images:
        raise DatasetError(
            f"{where} is too large: {n:,} images; at most {limits.images:,} are taken"
        )
    if total_bytes > limits.bytes:
        raise DatasetError(
            f"{where} is too large: {total_bytes / 1e6:,.0f} MB of images; at most "
            f"{limits.bytes / 1e6:,.0f} MB are taken"
        )
    for split in SPLITS:
        counts = torch.bincount(
            torch.tensor([label for label, _ in splits[split]], dtype=torch.int64),
            minlength=len(classes),
        )
        for folder in sorted(tree.folders):
            parts = folder.split("/")
            if len(parts) == 2 and parts[0] == split and counts[index[parts[1]]] == 0:
                raise DatasetError(f"{folder}/ in {where} holds no images")
        generator = torch.Generator().manual_seed(ORDER_SEED)
        order = torch.randperm(len(splits[split]), generator=generator).tolist()
        splits[split] = [splits[split][i] for i in order]
    return Plan(classes, splits)


def choose_shape(
    p: Plan,
    shape: tuple[int, ...] | None = None,
    on_progress: Progress | None = None,
) -> tuple[int, int, int]:
    """``shape`` if given (checked), else grey 1x28x28 if every picture is stored as
    grey, colour 3x32x32 if any is colour (every header is read, no pixels)."""
    if shape is not None:
        return check_shape(shape)
    done = 0
    colour = False
    for files in p.splits.values():
        for _, entry in files:
            try:
                colour = colour or not probe_image(entry.read()).grey
            except ImageError as e:
                raise DatasetError(f"{entry.path}: {e}") from None
            done += 1
            if on_progress is not None:
                on_progress(done, 2 * p.count)
    return COLOUR_SHAPE if colour else GREY_SHAPE


def decode_plan(
    p: Plan, shape: tuple[int, int, int], on_progress: Progress | None = None, done: int = 0
) -> Decoded:
    """Every image, the training split's first: images (N, C, H, W) uint8, labels (N,),
    classes. ``done``: progress steps before these (the headers read)."""
    files = [ImageFile(label, e.path, e.read) for s in SPLITS for label, e in p.splits[s]]
    images, labels = decode_files(
        files, shape, exact=False, on_progress=on_progress, done=done, total=done + len(files)
    )
    return images, labels, p.classes


Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


def load_tree(
    tree: Tree,
    shape: tuple[int, ...] | None = None,
    limits: FolderLimits = FolderLimits(),
    on_progress: Progress | None = None,
    cache: Path | None = None,
) -> tuple[tuple[str, ...], Splits]:
    """Check, size and decode a tree: (classes, {split: (images, labels)}).

    Args:
        shape: the images' shape; None: chosen from the pictures (see the module).
        on_progress: called with (steps done, steps in all) while headers are read
            (when the shape is chosen from them) and pictures decoded.
        cache: a folder to keep the decoded images in, for a tree on disk (keyed by
            its files' names, sizes and times, and the shape asked for).
    """
    p = plan(tree, limits)

    def decode() -> Decoded:
        chosen = choose_shape(p, shape, on_progress)
        return decode_plan(p, chosen, on_progress, done=p.count if shape is None else 0)

    if cache is None:
        images, labels, _ = decode()
    else:
        root = Path(tree.where)
        asked = "auto" if shape is None else "x".join(map(str, shape))
        files = (root / e.path for s in SPLITS for _, e in p.splits[s])
        images, labels, _ = cached(
            cache / f"folder-{root.name}-{cache_key(root, files, asked)}.pt", decode
        )
    n = len(p.splits["train"])
    return p.classes, {"train": (images[:n], labels[:n]), "test": (images[n:], labels[n:])}
