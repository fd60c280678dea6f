"""A tiny CIFAR-10 in the official python format, for tests (the real one cannot be
downloaded here): the pickled batches torchvision reads, and its checksum lists pointed
at them."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_cifar(root: Path, per_batch: int = 20) -> dict:
    """A tiny CIFAR-10 in ``cifar-10-batches-py/``; returns each batch's (data, labels).

    Rows hold 1024 red, then 1024 green, then 1024 blue values, row-major. The official
    files are Python 2 pickles whose keys torchvision reads with ``encoding="latin1"``,
    which gives ``str`` keys ("data", "labels"): the keys are written as ``str`` here.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in CIFAR_BATCHES:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump(
                {
                    "batch_label": name,
                    "labels": labels,
                    "data": data,
                    "filenames": [f"{name}_{i}.png" for i in range(per_batch)],
                },
                f,
            )
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(
            {"label_names": CIFAR_CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}, f
        )
    return batches


def write_fake_cifar(root: Path, monkeypatch) -> dict:
    """Write a tiny CIFAR-10 under ``root`` and make torchvision expect its checksums."""
    from torchvision.datasets import CIFAR10  # here: importing torchvision costs a second

    batches = make_cifar(root)
    folder = root / "cifar-10-batches-py"
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(folder / n)] for n in CIFAR_BATCHES[:5]])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(folder / "test_batch")]])
    monkeypatch.setattr(
        CIFAR10,
        "meta",
        {"filename": "batches.meta", "key": "label_names", "md5": md5(folder / "batches.meta")},
    )
    return batches


def colour_data_folder(tmp_path: Path, monkeypatch) -> Path:
    """The app's data folder with a tiny fake CIFAR-10 and the real MNIST beside it (a
    link to the usual data folder's), and a private cache; set in the environment."""
    import os

    root = tmp_path / "data"
    write_fake_cifar(root, monkeypatch)
    (root / "MNIST").symlink_to(Path(os.environ["CONVAE_DATA_DIR"]).resolve() / "MNIST")
    monkeypatch.setenv("CONVAE_DATA_DIR", str(root))
    monkeypatch.setenv("CONVAE_CACHE_DIR", str(tmp_path / "cache"))
    return root


def png_colour_data_folder(tmp_path: Path, monkeypatch, per_class: int = 3) -> Path:
    """The app's data folder with a tiny CIFAR-10 as its PNG copy only
    (``CIFAR10-png/{train,test}/<class>/*.png``, as in the shared datasets: the official
    archive absent) and the real MNIST beside it; a private cache; set in the
    environment."""
    import os

    from PIL import Image

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(CIFAR_CLASSES):
            folder = root / "CIFAR10-png" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                pixels[..., c % 3] //= 2  # each class a little less of one colour
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    (root / "MNIST").symlink_to(Path(os.environ["CONVAE_DATA_DIR"]).resolve() / "MNIST")
    monkeypatch.setenv("CONVAE_DATA_DIR", str(root))
    monkeypatch.setenv("CONVAE_CACHE_DIR", str(tmp_path / "cache"))
    return root
