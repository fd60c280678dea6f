"""MNIST's files read without torchvision: the same arrays, clear errors, a kept decode."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from convae.data.datasets import load_dataset, torchvision_dataset
from convae.data.idx import IdxError, parse_idx, read_idx, read_idx_cached


def idx_bytes(array: np.ndarray, kind: int = 0x08) -> bytes:
    header = bytes([0, 0, kind, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_parses_the_shape_and_values():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    parsed = parse_idx(idx_bytes(array))
    assert parsed.shape == (2, 3, 4) and np.array_equal(parsed, array)
    parsed[0, 0, 0] = 7  # a writable array of its own, as torch.from_numpy wants


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "magic"),
        (idx_bytes(np.zeros(3), kind=0x0D), "type"),
        (idx_bytes(np.zeros((2, 2)))[:-1], "has only 3 values"),
        (idx_bytes(np.zeros((2, 2))) + b"\x00", "more values"),
        (b"\x00\x00\x08\x03\x00", "cut short"),
        # 65536**4 wraps to 0 in int64: the size is counted exactly
        (b"\x00\x00\x08\x05" + struct.pack(">5I", *(65536,) * 4, 1), "at most"),
    ],
    ids=["magic", "float-values", "truncated-values", "extra-values", "truncated-header", "huge"],
)
def test_a_file_that_is_not_idx_is_refused(data, message):
    with pytest.raises(IdxError, match=message):
        parse_idx(data)


def test_a_broken_gzip_file_is_refused(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((2, 2, 2))))[:-9])
    with pytest.raises(IdxError, match="not a whole gzip file"):
        read_idx(path)


def test_a_gzip_bomb_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 4)  # declares 4 values...
    with gzip.open(path, "wb") as f:
        f.write(header)
        for _ in range(64):  # ...and carries 64 MiB of zeros (a 64 KiB file)
            f.write(bytes(1 << 20))
    with pytest.raises(IdxError, match="more values"):
        read_idx(path)


def test_a_damaged_kept_decode_is_made_again(tmp_path):
    path, cache = tmp_path / "labels-idx1-ubyte.gz", tmp_path / "cache"
    path.write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 3]))))
    read_idx_cached(path, cache)
    (kept,) = cache.glob("labels-*.npy")
    kept.write_bytes(b"")  # a crash mid-write
    assert read_idx_cached(path, cache).tolist() == [1, 2, 3]
    assert kept.stat().st_size > 0


def test_a_kept_decode_cut_short_is_made_again(tmp_path):
    path, cache = tmp_path / "images-idx3-ubyte.gz", tmp_path / "cache"
    pixels = np.arange(4 * 28 * 28, dtype=np.uint8).reshape(4, 28, 28)
    path.write_bytes(gzip.compress(idx_bytes(pixels)))
    read_idx_cached(path, cache)
    (kept,) = cache.glob("images-*.npy")
    kept.write_bytes(kept.read_bytes()[:-100])  # its header whole, its pixels not
    assert np.array_equal(read_idx_cached(path, cache), pixels)


def test_changing_what_was_read_changes_neither_the_kept_decode_nor_the_next_read(tmp_path):
    path, cache = tmp_path / "labels-idx1-ubyte.gz", tmp_path / "cache"
    path.write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 3]))))
    read_idx_cached(path, cache)
    (kept,) = cache.glob("labels-*.npy")
    before = kept.read_bytes()
    first = read_idx_cached(path, cache)
    first[:] = 9
    torch.from_numpy(first)[0] = 7  # as a dataset's tensor
    assert kept.read_bytes() == before
    assert read_idx_cached(path, cache).tolist() == [1, 2, 3]


def test_the_decode_is_kept_and_a_replaced_file_is_read_afresh(tmp_path):
    path, cache = tmp_path / "labels-idx1-ubyte.gz", tmp_path / "cache"
    path.write_bytes(gzip.compress(idx_bytes(np.array([1, 2, 3]))))
    assert read_idx_cached(path, cache).tolist() == [1, 2, 3]
    assert len(list(cache.glob("labels-*.npy"))) == 1
    assert read_idx_cached(path, cache).tolist() == [1, 2, 3]  # from the kept copy
    path.write_bytes(gzip.compress(idx_bytes(np.array([4, 5]))))
    assert read_idx_cached(path, cache).tolist() == [4, 5]


def test_mnist_is_what_torchvision_reads(data_root):
    ours = load_dataset("mnist", train=False, root=data_root)
    theirs = torchvision_dataset("mnist", train=False, root=data_root)
    assert torch.equal(ours.images[:, 0], theirs.data)
    assert torch.equal(ours.labels, theirs.targets)
    assert ours.classes == tuple(theirs.classes)
