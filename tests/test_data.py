import io
import re
import stat
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from cifar_files import CIFAR_BATCHES, CIFAR_CLASSES, make_cifar, write_fake_cifar
from support import copy_mnist, tree_snapshot

from convae import DatasetError, ModelConfig, TrainConfig, build_model, load_dataset, train
from convae.data.datasets import clear_cache, dataset_names, source_root

MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture(autouse=True)
def fresh_loads():
    """load_dataset caches per process; every test here starts from an empty cache."""
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A cache folder for this test alone, so that its copies are made afresh."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CONVAE_CACHE_DIR", str(cache))
    return cache


def make_read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


# --- MNIST and Fashion-MNIST from the real files --------------------------------------


@pytest.mark.parametrize("train, n", [(True, 60000), (False, 10000)])
def test_mnist_loads_both_splits(data_root, train, n):
    ds = load_dataset("mnist", train=train, root=data_root)
    assert len(ds) == n and ds.train is train
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (n, 1, 28, 28)
    assert ds.labels.dtype == torch.int64 and set(ds.labels.unique().tolist()) == set(range(10))
    assert ds.classes == tuple(
        f"{i} - {w}"
        for i, w in enumerate("zero one two three four five six seven eight nine".split())
    )
    assert ds.images.max() == 255 and ds.images.min() == 0


def test_fashion_mnist_loads(fashion_root):
    ds = load_dataset("fashion-mnist", train=False, root=fashion_root)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (10000, 1, 28, 28)
    assert len(ds.classes) == 10 and ds.classes[9] == "Ankle boot"
    train_set = load_dataset("fashion-mnist", train=True, root=fashion_root)
    assert train_set.images.shape == (60000, 1, 28, 28)


def test_the_data_folder_comes_from_the_environment(data_root, monkeypatch):
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))
    assert len(load_dataset("mnist", train=False)) == 10000


def test_a_second_load_is_served_from_memory(data_root):
    assert load_dataset("mnist", train=False, root=data_root) is load_dataset(
        "mnist", train=False, root=data_root
    )


def test_floats_are_in_the_unit_range(mnist_test):
    x = mnist_test.floats(slice(0, 8))
    assert x.dtype == torch.float32 and x.shape == (8, 1, 28, 28)
    assert x.min() == 0 and x.max() == 1
    assert mnist_test.images.dtype == torch.uint8  # not converted in place


def test_subset_keeps_only_the_chosen_classes(mnist_test):
    threes = mnist_test.subset(classes=[3])
    assert len(threes) == int((mnist_test.labels == 3).sum()) > 0
    assert set(threes.labels.tolist()) == {3}
    assert mnist_test.subset(classes=[3], limit=5).labels.tolist() == [3] * 5
    assert len(mnist_test.subset(limit=7)) == 7


@pytest.mark.parametrize("bad", [10, -1])
def test_subset_of_a_class_that_does_not_exist(mnist_test, bad):
    with pytest.raises(DatasetError, match=rf"no class \[{bad}\] in mnist; classes are 0\.\.9"):
        mnist_test.subset(classes=[1, bad])


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(
        DatasetError,
        match="unknown dataset 'cifar100'; choose one of: " + ", ".join(dataset_names()),
    ):
        load_dataset("cifar100", train=False)


@pytest.mark.parametrize(
    "name, root_fixture", [("mnist", "data_root"), ("fashion-mnist", "fashion_root")]
)
def test_loading_leaves_the_data_folder_unchanged(request, own_cache, name, root_fixture):
    data_root = request.getfixturevalue(root_fixture)
    before = tree_snapshot(data_root)
    load_dataset(name, train=True, root=data_root)
    load_dataset(name, train=False, root=data_root)
    assert tree_snapshot(data_root) == before
    # the files were decoded into the cache instead
    assert list(own_cache.rglob("t10k-images-idx3-ubyte*"))


def test_images_are_held_in_memory_once_whether_decoded_or_kept(data_root, own_cache, monkeypatch):
    """A fresh decode is used as it is (no second 47 MB copy of MNIST's training images);
    the decode kept in the cache is mapped from disk, so it is copied into memory (a
    training's random reads over the mapped pages were slower), and changing the loaded
    images leaves the kept file alone."""
    import convae.data.datasets

    read = convae.data.datasets.read_idx_cached
    arrays: list[np.ndarray] = []

    def reading(path, cache):
        arrays.append(read(path, cache))
        return arrays[-1]

    monkeypatch.setattr(convae.data.datasets, "read_idx_cached", reading)
    decoded = load_dataset("mnist", train=False, root=data_root)
    assert not isinstance(arrays[0], np.memmap)
    assert decoded.images.data_ptr() == arrays[0].ctypes.data

    clear_cache()
    arrays.clear()
    kept = load_dataset("mnist", train=False, root=data_root)
    assert isinstance(arrays[0], np.memmap)
    assert kept.images.data_ptr() != arrays[0].ctypes.data
    assert torch.equal(kept.images, decoded.images)
    kept.images[0] = 0
    clear_cache()
    assert torch.equal(load_dataset("mnist", train=False, root=data_root).images, decoded.images)


def test_a_read_only_data_folder_works_and_stays_unchanged(data_root, tmp_path, own_cache):
    root = copy_mnist(data_root, tmp_path / "ro")
    make_read_only(root)
    try:
        before = tree_snapshot(root)
        ds = load_dataset("mnist", train=False, root=root)
        assert ds.images.shape == (10000, 1, 28, 28)
        # as root, permission bits do not stop writes: check that none happened
        assert tree_snapshot(root) == before
    finally:
        make_writable(root)


def test_a_missing_data_folder_names_the_folder_and_the_files(tmp_path, offline):
    root = tmp_path / "no-data-here"
    with pytest.raises(DatasetError, match=re.escape(f"mnist is not in {root}")) as info:
        load_dataset("mnist", train=False, root=root)
    message = str(info.value)
    for f in MNIST_FILES:
        assert f"MNIST/raw/{f}" in message
    assert "CONVAE_DATA_DIR" in message
    assert "\n" not in message  # one line: the CLI prints it as is


def test_a_corrupted_archive_is_a_dataset_error(data_root, tmp_path, own_cache, offline):
    root = copy_mnist(data_root, tmp_path / "data")
    bad = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(b"this is not gzip data" * 100)
    before = tree_snapshot(root)
    with pytest.raises(DatasetError, match=re.escape(f"mnist in {root} is damaged")):
        load_dataset("mnist", train=False, root=root)
    assert tree_snapshot(root) == before


def test_a_repaired_data_folder_loads_again(data_root, tmp_path, own_cache, offline):
    """A broken copy in the cache must not outlive the user's fix of their files."""
    root = copy_mnist(data_root, tmp_path / "data")
    images = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    good = images.read_bytes()
    images.write_bytes(good[: len(good) // 2])  # an interrupted download
    with pytest.raises(DatasetError):
        load_dataset("mnist", train=False, root=root)
    images.write_bytes(good)
    clear_cache()
    assert len(load_dataset("mnist", train=False, root=root)) == 10000


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch, own_cache):
    """A generated CIFAR-10 whose checksums torchvision is told to expect."""
    root = tmp_path / "data"
    return root, write_fake_cifar(root, monkeypatch)


def test_cifar10_test_split_has_the_stored_pixels(fake_cifar):
    root, batches = fake_cifar
    data, labels = batches["test_batch"]
    ds = load_dataset("cifar10", train=False, root=root)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (20, 3, 32, 32)
    assert ds.labels.tolist() == labels
    assert ds.classes == tuple(CIFAR_CLASSES)
    i, r, c = 3, 5, 7
    for channel in range(3):  # R, G, B planes of 1024 values each
        assert ds.images[i, channel, r, c] == data[i, channel * 1024 + r * 32 + c]
    assert torch.equal(ds.images, torch.from_numpy(data.reshape(-1, 3, 32, 32)))


def test_cifar10_train_split_is_the_five_batches_in_order(fake_cifar):
    root, batches = fake_cifar
    ds = load_dataset("cifar10", train=True, root=root)
    assert ds.images.shape == (100, 3, 32, 32)
    expected = np.concatenate([batches[n][0] for n in CIFAR_BATCHES[:5]])
    assert torch.equal(ds.images, torch.from_numpy(expected.reshape(-1, 3, 32, 32)))
    assert ds.labels.tolist() == sum((batches[n][1] for n in CIFAR_BATCHES[:5]), [])


def test_a_model_trains_on_cifar10(fake_cifar):
    root, _ = fake_cifar
    ds = load_dataset("cifar10", train=True, root=root)
    model = build_model(ModelConfig("conv-transpose", ds.shape), seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    steps = []
    history = train(
        model,
        ds.images,
        TrainConfig(batch_size=50),
        device="cpu",
        on_step=lambda p: steps.append(p.loss),
    )
    assert len(steps) == 2 and all(np.isfinite(steps))
    assert len(history.epochs) == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert model(ds.floats(slice(0, 2))).shape == (2, 3, 32, 32)


class FakeServer:
    """Stands in for the network: every URL answers with the same (wrong) bytes."""

    def __init__(self):
        self.urls = []

    def urlopen(self, request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.urls.append(url)
        response = io.BytesIO(b"not the archive you are looking for")
        response.url, response.length, response.status = url, 35, 200
        return response


def test_a_download_never_lands_in_a_data_folder_that_holds_files(tmp_path, monkeypatch, own_cache):
    root = tmp_path / "data"
    make_cifar(root)  # official checksums not patched: torchvision calls it corrupted
    before = tree_snapshot(root)
    server = FakeServer()
    monkeypatch.setattr(urllib.request, "urlopen", server.urlopen)
    with pytest.raises(DatasetError, match=re.escape(f"cifar10 in {root} is damaged")):
        load_dataset("cifar10", train=False, root=root)
    assert server.urls  # a download was attempted...
    assert tree_snapshot(root) == before  # ...but not into the user's folder
    assert list(own_cache.rglob("cifar-10-python.tar.gz"))


def test_unreadable_cifar_files_are_a_dataset_error(fake_cifar, offline):
    root, _ = fake_cifar
    (root / "cifar-10-batches-py" / "batches.meta").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=re.escape(f"cifar10 in {root} could not be read")):
        load_dataset("cifar10", train=False, root=root)


def test_mnist_needs_no_data_folder_and_its_bundled_files_stay_unchanged(
    tmp_path, monkeypatch, own_cache, offline
):
    """The embedded default: MNIST ships with the package; an empty data folder (or none)
    falls back to it, and nothing is written next to the bundled files."""
    from convae.data.datasets import BUNDLED_DIR

    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "empty"))
    before = tree_snapshot(BUNDLED_DIR)
    clear_cache()
    test, train_split = load_dataset("mnist", train=False), load_dataset("mnist", train=True)
    assert (len(test), len(train_split)) == (10000, 60000)
    assert tree_snapshot(BUNDLED_DIR) == before
    assert not (tmp_path / "empty").exists()
    # a data folder with its own MNIST takes precedence over the bundled copy
    assert source_root("mnist") == BUNDLED_DIR
    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path))
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").write_bytes(b"x")
    assert source_root("mnist") == tmp_path
    assert source_root("fashion-mnist") == tmp_path  # only MNIST is bundled


def test_on_disk_says_which_datasets_load_without_a_download(
    data_root, fashion_root, tmp_path, monkeypatch
):
    from convae.data.datasets import on_disk

    monkeypatch.setenv("CONVAE_DATA_DIR", str(data_root))
    assert on_disk("mnist") and on_disk("fashion-mnist")
    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty" / "FashionMNIST" / "raw").mkdir(parents=True)  # a failed download
    assert on_disk("mnist")  # bundled with the package
    assert not on_disk("fashion-mnist") and not on_disk("cifar10")


# ------------------------------------------------------------ CIFAR-10 as a PNG copy
def write_png_cifar(root: Path) -> dict[str, np.ndarray]:
    """A tiny CIFAR10-png/ tree: two classes, 3 training and 2 test images each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    written = {}
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "airplane"):  # written out of order: classes are sorted
            folder = root / "CIFAR10-png" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{cls}_{i}.png")
                written[f"{split}/{cls}/{i}"] = pixels
    return written


def test_cifar10_is_read_pixel_exact_from_its_png_copy_where_the_archive_is_absent(
    tmp_path, monkeypatch
):
    from convae.data.datasets import on_disk

    written = write_png_cifar(tmp_path / "data")
    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONVAE_CACHE_DIR", str(tmp_path / "cache"))
    assert on_disk("cifar10")
    clear_cache()
    train = load_dataset("cifar10", train=True)
    assert train.images.shape == (6, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.classes == ("airplane", "cat") and sorted(train.labels.tolist()) == [
        0,
        0,
        0,
        1,
        1,
        1,
    ]
    # every image pixel-exact, under its own class's label (in a fixed shuffled order)
    for image, label in zip(train.images, train.labels.tolist(), strict=True):
        cls = train.classes[label]
        assert any(
            torch.equal(image, torch.from_numpy(written[f"train/{cls}/{i}"]).permute(2, 0, 1))
            for i in range(3)
        )
    assert "PNG copy" in train.source
    test = load_dataset("cifar10", train=False)
    assert len(test) == 4 and test.classes == ("airplane", "cat")
    # decoded once: the next process reads the cache file, and gets the same pixels
    assert len(list((tmp_path / "cache" / "png").glob("*.pt"))) == 2
    clear_cache()
    again = load_dataset("cifar10", train=True)
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)
    clear_cache()


def test_a_png_copy_with_a_foreign_image_is_refused_with_its_name(tmp_path, monkeypatch):
    from PIL import Image

    write_png_cifar(tmp_path / "data")
    odd = tmp_path / "data" / "CIFAR10-png" / "test" / "cat" / "cat_9.png"
    Image.new("L", (28, 28)).save(odd)  # an MNIST-sized grey picture among colour ones
    monkeypatch.setenv("CONVAE_CACHE_DIR", str(tmp_path / "cache"))
    clear_cache()
    with pytest.raises(DatasetError, match=r"cat_9.png is 28x28 L; expected 32x32 RGB"):
        load_dataset("cifar10", train=False, root=tmp_path / "data")
    clear_cache()


def test_the_png_copy_comes_shuffled_so_the_first_images_sample_every_class(tmp_path, monkeypatch):
    from PIL import Image

    for cls in ("airplane", "bird", "cat"):  # sorted by class on disk, 20 of each
        folder = tmp_path / "data" / "CIFAR10-png" / "train" / cls
        folder.mkdir(parents=True)
        for i in range(20):
            Image.new("RGB", (32, 32), (i, 0, 0)).save(folder / f"{cls}_{i:02d}.png")
    monkeypatch.setenv("CONVAE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONVAE_CACHE_DIR", str(tmp_path / "cache"))
    clear_cache()
    first = load_dataset("cifar10", train=True).labels
    assert set(first[:10].tolist()) == {0, 1, 2}
    clear_cache()
    assert torch.equal(load_dataset("cifar10", train=True).labels, first)  # the same order
    clear_cache()


def _decode_split_counting(split: str, cache: str, count: str) -> None:
    """In a forked child: load a PNG split, noting in ``count`` each decode it made."""
    from convae.data import png_folder

    decode_files = png_folder.decode_files

    def counting(*args, **kwargs):
        with open(count, "a") as f:
            f.write("decoded\n")
        time.sleep(0.5)  # long enough for the other process to arrive meanwhile
        return decode_files(*args, **kwargs)

    png_folder.decode_files = counting
    png_folder.load_png_split(Path(split), (3, 32, 32), Path(cache))


def test_two_processes_wanting_the_same_split_decode_it_once(tmp_path):
    """The second replica of a class server (or test worker) waits for the first one's
    decoded file instead of decoding the same pictures beside it."""
    import multiprocessing

    write_png_cifar(tmp_path / "data")
    split = tmp_path / "data" / "CIFAR10-png" / "train"
    count = tmp_path / "decodes.txt"
    ctx = multiprocessing.get_context("fork")
    args = (str(split), str(tmp_path / "cache"), str(count))
    children = [ctx.Process(target=_decode_split_counting, args=args) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert count.read_text().splitlines() == ["decoded"]
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
