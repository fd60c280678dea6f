"""MNIST's file format (IDX), read with numpy.

MNIST and Fashion-MNIST ship as four IDX files, gzipped. Reading them here, instead of
through torchvision's dataset classes, spares a command the 1-2 s of importing
torchvision and the step of extracting the archives to disk: a gzipped file is
decompressed in memory once and kept, decoded, in the cache folder (``.npy``), so later
loads read it straight back.

The format: a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian 32-bit size per dimension, then the values.
"""

from __future__ import annotations

import gzip
import io
import math
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from convae.base.files import write_atomically
from convae.data.png_folder import cache_key

_UNSIGNED_BYTE = 0x08  # the only type MNIST's files use


class IdxError(ValueError):
    """The bytes are not an IDX file of unsigned bytes."""


MAX_VALUES = 1 << 30  # 1 GiB of pixels: far above MNIST's 47 million, far below a bomb's


def _shape(header: bytes) -> tuple[int, ...]:
    """The shape a header of 4 + 4 * ndim bytes declares (checked for sense)."""
    if len(header) < 4 or header[:2] != b"\0\0":
        raise IdxError("not an IDX file (bad magic number)")
    kind, ndim = header[2], header[3]
    if kind != _UNSIGNED_BYTE:
        raise IdxError(f"IDX values of type {kind:#x}; expected unsigned bytes (0x08)")
    if ndim == 0 or len(header) < 4 + 4 * ndim:
        raise IdxError("IDX header is cut short")
    shape = struct.unpack(f">{ndim}I", header[4 : 4 + 4 * ndim])
    if math.prod(shape) > MAX_VALUES:
        raise IdxError(f"IDX file declares {math.prod(shape):,} values; at most {MAX_VALUES:,}")
    return shape


def _read(stream: BinaryIO | gzip.GzipFile) -> np.ndarray:
    """Read an IDX file from ``stream``: its header, then exactly the values it declares
    (no more is read: a gzip bomb is refused before it is inflated)."""
    start = stream.read(4)
    ndim = start[3] if len(start) == 4 else 0
    shape = _shape(start + stream.read(4 * ndim))
    size = math.prod(shape)
    values = stream.read(size + 1)
    if len(values) < size:
        raise IdxError(f"IDX file of shape {shape} has only {len(values)} values")
    if len(values) > size:
        raise IdxError(f"IDX file of shape {shape} has more values than its shape holds")
    # a copy: an array over the bytes would be read-only
    return np.frombuffer(values, dtype=np.uint8).reshape(shape).copy()


def parse_idx(data: bytes) -> np.ndarray:
    """An IDX file's content -> array of its shape (uint8)."""
    return _read(io.BytesIO(data))


def read_idx(path: Path) -> np.ndarray:
    """The array in ``path`` (an IDX file, gzipped if its name ends in ``.gz``)."""
    if path.suffix != ".gz":
        with open(path, "rb") as f:
            return _read(f)
    try:
        with gzip.open(path, "rb") as f:
            return _read(f)
    except (OSError, EOFError, zlib.error) as e:  # not gzip, or cut short
        raise IdxError(f"{path.name} is not a whole gzip file: {e}") from None


def read_idx_cached(path: Path, cache: Path) -> np.ndarray:
    """:func:`read_idx`, kept decoded in ``cache`` under a name that changes with the
    file's path, size and modification time (a replaced file is read afresh)."""
    decoded = cache / f"{path.name.split('.')[0]}-{cache_key(path.parent, [path])[:12]}.npy"
    try:
        # mapped copy-on-write: nothing is read until it is used, and the caller may
        # change the array without changing the file (a caller that reads it all, or at
        # random, copies it into memory: see convae.data.datasets)
        kept = np.load(decoded, mmap_mode="c", allow_pickle=False)
        if kept.dtype == np.uint8:
            return kept
    except Exception:  # absent, empty or damaged (a crash mid-write): decode again
        pass
    array = read_idx(path)
    npy = io.BytesIO()
    np.save(npy, array, allow_pickle=False)
    try:
        write_atomically(decoded, npy.getvalue())
    except OSError:  # a read-only or full cache: read the file each time
        pass
    return array
