"""Datasets as uint8 tensors in memory: MNIST's files read directly, others through
torchvision.

Where the files come from: the folder in ``CONVAE_DATA_DIR`` (default ``./data``), laid
out as torchvision expects (``MNIST/raw/*.gz``, ``FashionMNIST/raw/*.gz``,
``cifar-10-batches-py/``); where CIFAR-10's official files are absent, its lossless PNG
copy in ``CIFAR10-png/{train,test}/<class>/``. Any folder of images laid out so (``train/`` and
``test/``, one subfolder per class) is a dataset too, named ``folder:PATH`` (see
:mod:`convae.data.folders`). MNIST's four official files ship inside the package
(``convae/bundled/``), so MNIST works offline with no setup; a data folder that has its
own copy takes precedence. Other missing files are downloaded where a network exists. A
read-only folder works: its files (and the bundled ones) are copied to a cache folder
before torchvision extracts anything, and nothing in the data folder is ever changed or
deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from convae.base.errors import DatasetError, check_choice
from convae.base.tensors import to_unit_float
from convae.data.folders import disk_tree, folder_path, is_folder_name, load_tree
from convae.data.idx import IdxError, read_idx_cached
from convae.data.png_folder import Progress, load_png_split

DATA_DIR_ENV = "CONVAE_DATA_DIR"
CACHE_DIR_ENV = "CONVAE_CACHE_DIR"
# MNIST (LeCun, Cortes & Burges; CC BY-SA 3.0) ships with the package: the default dataset
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "bundled"  # convae/bundled

log = logging.getLogger("convae.data.datasets")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    tv_name: str  # its class in torchvision.datasets (imported only when needed: 1-2 s)
    files: tuple[str, ...]  # what a user must provide, relative to the data root
    sources: tuple[str, ...]  # what is copied to the cache before torchvision extracts it
    shape: tuple[int, int, int]
    bundled: bool = False  # its files ship in BUNDLED_DIR
    png_folder: str | None = None  # a lossless PNG copy, read where the official files are absent
    # MNIST-like: its class names, and its IDX files are read directly (convae.data.idx)
    classes: tuple[str, ...] = ()

    @property
    def tv_class(self):
        from torchvision import datasets

        return getattr(datasets, self.tv_name)


_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        "MNIST",
        tuple(f"MNIST/raw/{f}" for f in _MNIST_FILES),
        ("MNIST",),
        (1, 28, 28),
        bundled=True,
        classes=tuple(
            f"{i} - {n}"
            for i, n in enumerate("zero one two three four five six seven eight nine".split())
        ),
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "FashionMNIST",
        tuple(f"FashionMNIST/raw/{f}" for f in _MNIST_FILES),
        ("FashionMNIST",),
        (1, 28, 28),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        "CIFAR10",
        (
            "cifar-10-python.tar.gz (or its extracted folder cifar-10-batches-py/, or the PNG "
            "copy CIFAR10-png/{train,test}/<class>/*.png)",
        ),
        ("cifar-10-python.tar.gz", "cifar-10-batches-py"),
        (3, 32, 32),
        png_folder="CIFAR10-png",
    ),
}


@dataclass(frozen=True)
class ImageSet:
    """One split of a dataset, held in memory.

    Attributes:
        images: (N, C, H, W) uint8.
        labels: (N,) int64 class indices.
        classes: class names, indexed by label.
        source: where the images were read from (the official files, or a PNG copy).
    """

    name: str
    train: bool
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str = ""  # where the images were read from

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return c, h, w

    def floats(self, index: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Images (all, or those at ``index``) as float32 in [0, 1]."""
        return to_unit_float(self.images if index is None else self.images[index])

    def mean_intensity(self) -> float:
        """Mean pixel value in [0, 1] (for :func:`convae.nn.models.build_model`)."""
        # a chunk at a time: a float copy of all of MNIST's training images is 188 MB
        total = sum(chunk.float().sum().item() for chunk in self.images.split(4096))
        return total / max(self.images.numel(), 1) / 255

    def subset(self, classes: list[int] | None = None, limit: int | None = None) -> ImageSet:
        """Only the given class indices, and at most the first ``limit`` images."""
        images, labels = self.images, self.labels
        if classes is not None:
            bad = [c for c in classes if not 0 <= c < len(self.classes)]
            if bad:
                raise DatasetError(
                    f"no class {bad} in {self.name}; classes are 0..{len(self.classes) - 1}"
                )
            keep = torch.isin(labels, torch.tensor(classes))
            images, labels = images[keep], labels[keep]
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        return ImageSet(self.name, self.train, images, labels, self.classes, self.source)


def dataset_names() -> list[str]:
    return list(DATASETS)


def data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def cache_dir() -> Path:
    default = Path(tempfile.gettempdir()) / "convae-cache"
    return Path(os.environ.get(CACHE_DIR_ENV) or default)


def _info(name: str) -> DatasetInfo:
    check_choice("dataset", name, DATASETS, error=DatasetError)
    return DATASETS[name]


def _writable(path: Path) -> bool:
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return os.access(probe, os.W_OK)


def _working_root(info: DatasetInfo, root: Path) -> Path:
    """A root that torchvision may write into (extract, download) for this dataset.

    Files the user provided are never touched: if any exist, they are copied to a cache
    folder and extracted there. Only a dataset that is not there at all is downloaded
    into ``root`` itself (or into the cache if ``root`` is read-only).
    """
    provided = [root / s for s in info.sources if (root / s).exists()]
    if not provided and _writable(root):
        return root
    # the key changes with the user's files, so a copy of broken files (an interrupted
    # download) is not used any more once the user has replaced them
    signature = [str(root.resolve())]
    for source in provided:
        for f in sorted(source.rglob("*")) if source.is_dir() else [source]:
            if f.is_file():
                st = f.stat()
                signature.append(f"{f.relative_to(root)} {st.st_size} {st.st_mtime_ns}")
    key = hashlib.sha1("\n".join(signature).encode()).hexdigest()[:12]
    copy_root = cache_dir() / "data" / key
    for source in provided:
        target = copy_root / source.relative_to(root)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
        if source.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
        else:
            shutil.copyfile(source, tmp)
        tmp.rename(target)  # atomic: a half-made copy is never mistaken for a whole one
    return copy_root


def _damaged(info: DatasetInfo, root: Path) -> list[str]:
    """Files that are there but are not the official bytes (torchvision's checksums)."""
    from torchvision.datasets.utils import check_integrity

    cls = info.tv_class
    checks = [
        (root / cls.__name__ / "raw" / f, md5)  # MNIST-like
        for f, md5 in getattr(cls, "resources", None) or []
    ]
    if hasattr(cls, "tgz_md5"):  # CIFAR-10: the archive, or its extracted batches
        checks.append((root / cls.filename, cls.tgz_md5))
        checks += [
            (root / cls.base_folder / f, md5) for f, md5 in [*cls.train_list, *cls.test_list]
        ]
    try:
        return [
            str(p.relative_to(root))
            for p, md5 in checks
            if p.is_file() and not check_integrity(str(p), md5)
        ]
    except OSError:
        return []


def _provided(info: DatasetInfo, root: Path) -> bool:
    """Whether ``root`` holds any file of this dataset (an empty folder left behind by a
    failed download does not count)."""
    for source in (root / s for s in info.sources):
        if source.is_file() or (source.is_dir() and any(p.is_file() for p in source.rglob("*"))):
            return True
    return False


def on_disk(name: str) -> bool:
    """Whether dataset ``name``'s files are at hand (in the data folder, or bundled), so
    that loading it needs no download: for offering it only where it loads at once."""
    info = _info(name)
    root = source_root(name)
    return (
        _provided(info, root)
        or (info.bundled and _provided(info, BUNDLED_DIR))
        or _png_split(info, root, train=True) is not None
    )


def _png_split(info: DatasetInfo, root: Path, train: bool) -> Path | None:
    """The PNG copy's folder for this split, if the dataset has one and it is there."""
    if info.png_folder is None:
        return None
    split = root / info.png_folder / ("train" if train else "test")
    return split if split.is_dir() else None


def _not_found(info: DatasetInfo, root: Path, cause: BaseException) -> DatasetError:
    """A short message that says what to do; the underlying error goes to the log."""
    log.info("%s could not be loaded from %s: %s", info.name, root, cause)
    damaged = _damaged(info, root)
    if damaged:
        return DatasetError(
            f"{info.name} in {root.resolve()} is damaged: {', '.join(damaged)} "
            f"{'is' if len(damaged) == 1 else 'are'} not the official "
            f"file{'' if len(damaged) == 1 else 's'} (checksum mismatch); replace "
            f"{'it' if len(damaged) == 1 else 'them'} with the official download."
        )
    if _provided(info, root):
        return DatasetError(
            f"{info.name} in {root.resolve()} could not be read ({type(cause).__name__}): "
            f"replace its files with the official ones ({', '.join(info.files)})."
        )
    return DatasetError(
        f"{info.name} is not in {root.resolve()}: put its official files there "
        f"({', '.join(info.files)}) or set {DATA_DIR_ENV} to a folder that has them; with "
        "a network connection they are downloaded automatically."
    )


def source_root(name: str, root: str | Path | None = None) -> Path:
    """The folder a dataset is read from: a ``folder:PATH`` dataset's PATH; ``root`` if
    given; otherwise the data folder, or for a bundled dataset (MNIST) the package's own
    copy when the data folder has none.
    """
    if is_folder_name(name):
        return folder_path(name)
    if root is not None:
        return Path(root)
    info, folder = _info(name), data_dir()
    if info.bundled and not _provided(info, folder):
        return BUNDLED_DIR
    return folder


def _open_torchvision(info: DatasetInfo, root: Path, train: bool):
    try:
        return info.tv_class(str(root), train=train, download=False)
    except RuntimeError:
        pass  # not extracted yet, or missing: let download() extract or fetch
    except Exception as e:  # present but unreadable
        raise _not_found(info, root, e) from e
    try:
        work = _working_root(info, root)
        return info.tv_class(str(work), train=train, download=True)
    except Exception as e:  # network errors, bad archives, checksum failures
        raise _not_found(info, root, e) from e


def torchvision_dataset(name: str, *, train: bool, root: str | Path | None = None, transform=None):
    """The plain torchvision dataset object (PIL images, optional ``transform``).

    ``train`` has no default, as in :func:`load_dataset`.

    For code that wants torchvision's per-sample interface, such as the benchmark's
    tutorial-style loop; convae itself uses :func:`load_dataset`.
    """
    info = _info(name)
    ds = _open_torchvision(info, source_root(name, root), train)
    ds.transform = transform
    return ds


def _read_idx_split(
    info: DatasetInfo, root: Path, train: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """(images (N, H, W), labels (N,)) of an MNIST-like split read from its IDX files, or
    None where they are not all there (torchvision then extracts or downloads them)."""
    if not info.classes:
        return None
    prefix = "train" if train else "t10k"
    found = []
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte"
        candidates = [root / info.tv_name / "raw" / n for n in (name, f"{name}.gz")]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return None
        found.append(path)
    try:
        images, labels = (read_idx_cached(p, cache_dir() / "idx") for p in found)
    except (IdxError, OSError) as e:
        raise _not_found(info, root, e) from e
    if images.shape[1:] != info.shape[1:] or labels.shape != images.shape[:1]:
        raise _not_found(
            info, root, IdxError(f"images of shape {images.shape}, labels {labels.shape}")
        )
    return images, labels


_lock = threading.Lock()
_loaded: dict[tuple[str, bool, str, tuple[int, ...] | None], ImageSet] = {}


def load_dataset(
    name: str,
    *,
    train: bool,
    root: str | Path | None = None,
    shape: tuple[int, ...] | None = None,
    on_progress: Progress | None = None,
) -> ImageSet:
    """Load one split of a dataset into memory (once per process; later calls are free).

    Args:
        name: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``, or ``"folder:PATH"`` for
            a folder of images (:mod:`convae.data.folders`).
        train: True for the training split, False for the test split. Required: a
            default would have to pick one, and torchvision's picks the other.
        root: data folder; defaults to ``$CONVAE_DATA_DIR`` or ``./data`` (for MNIST, the
            bundled copy when that folder has none). Not used by ``folder:PATH``.
        shape: (C, H, W) for a folder of images (default: chosen from its pictures);
            for the named datasets, their own shape or None.
        on_progress: for a folder of images, called with (steps done, steps in all)
            while it is read (both splits are read at once).

    Raises:
        DatasetError: unknown name, the files are missing and cannot be downloaded,
            a folder of images that breaks the rules, or a shape the dataset lacks.
    """
    if is_folder_name(name):
        return _load_folder(name, train, shape, on_progress)
    info = _info(name)
    if shape is not None and tuple(shape) != info.shape:
        raise DatasetError(
            f"{name} images are {'x'.join(map(str, info.shape))}, not "
            f"{'x'.join(map(str, shape))}; only a folder of images takes another shape"
        )
    root = source_root(name, root)
    key = (name, train, str(root.resolve()), None)
    with _lock:
        if key not in _loaded:
            png = None if _provided(info, root) else _png_split(info, root, train)
            if png is not None:  # the official files are absent: their lossless PNG copy
                images, labels, classes = load_png_split(png, info.shape, cache_dir() / "png")
                # The copy is sorted by class, and the official order is not in it: a fixed
                # shuffle instead, so that the first N images (a quick training's) sample
                # every class, as they do in the official order.
                order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
                images, labels = images[order].contiguous(), labels[order]
                log.info("%s (%s) read from the PNG copy in %s", name, png.name, png)
                _loaded[key] = ImageSet(name, train, images, labels, classes, f"PNG copy {png}")
                return _loaded[key]
            idx = _read_idx_split(info, root, train)
            if idx is not None:
                images, labels = (torch.from_numpy(a) for a in idx)
                if isinstance(idx[0], np.memmap):
                    # the decoded copy kept in the cache, mapped: into memory, as training's
                    # random reads over a mapped file's small pages made an epoch 10 %
                    # slower; torch copies MNIST's 47 MB in 0.02 s where numpy took 0.11 s
                    # (measured, in a fresh process). A fresh decode is in memory already.
                    images = images.clone()
                _loaded[key] = ImageSet(
                    name,
                    train,
                    images.unsqueeze(1),
                    labels.long(),
                    info.classes,
                    f"files in {root}",
                )
                return _loaded[key]
            ds = _open_torchvision(info, root, train)
            images = torch.as_tensor(np.asarray(ds.data))
            if images.ndim == 3:  # MNIST-like: (N, H, W)
                images = images.unsqueeze(1)
            else:  # CIFAR-10: (N, H, W, C)
                images = images.permute(0, 3, 1, 2)
            labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
            if images.dtype != torch.uint8 or tuple(images.shape[1:]) != info.shape:
                raise DatasetError(
                    f"{name} in {root} has images of shape {tuple(images.shape[1:])} and type "
                    f"{images.dtype}; expected {info.shape} uint8. Are these the official files?"
                )
            _loaded[key] = ImageSet(
                name, train, images.contiguous(), labels, tuple(ds.classes), f"files in {root}"
            )
        return _loaded[key]


def _load_folder(
    name: str, train: bool, shape: tuple[int, ...] | None, on_progress: Progress | None
) -> ImageSet:
    """Both splits of a folder of images, read and decoded once (one listing, one check)."""
    root = folder_path(name)
    asked = None if shape is None else tuple(int(v) for v in shape)
    key = (name, train, str(root.resolve()), asked)
    with _lock:
        if key not in _loaded:
            classes, splits = load_tree(
                disk_tree(root), asked, on_progress=on_progress, cache=cache_dir() / "folders"
            )
            for split, (images, labels) in splits.items():
                source = f"image folder {root.resolve()} ({split}/, {len(labels):,} images)"
                is_train = split == "train"
                _loaded[(name, is_train, key[2], asked)] = ImageSet(
                    name, is_train, images, labels, classes, source
                )
        return _loaded[key]


def clear_cache() -> None:
    """Forget datasets loaded in this process (for tests)."""
    with _lock:
        _loaded.clear()
