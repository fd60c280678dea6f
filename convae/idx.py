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
import hashlib
import os
import struct
from pathlib import Path

import numpy as np

_UNSIGNED_BYTE = 0x08  # the only type MNIST's files use


class IdxError(ValueError):
    """The bytes are not an IDX file of unsigned bytes."""


def parse_idx(data: bytes) -> np.ndarray:
    """An IDX file's content -> array of its shape (uint8)."""
    if len(data) < 4 or data[:2] != b"\0\0":
        raise IdxError("not an IDX file (bad magic number)")
    kind, ndim = data[2], data[3]
    if kind != _UNSIGNED_BYTE:
        raise IdxError(f"IDX values of type {kind:#x}; expected unsigned bytes (0x08)")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise IdxError("IDX header is cut short")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) != header + int(np.prod(shape)):
        raise IdxError(f"IDX file of shape {shape} has {len(data) - header} values")
    # a copy: an array over the bytes would be read-only
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx(path: Path) -> np.ndarray:
    """The array in ``path`` (an IDX file, gzipped if its name ends in ``.gz``)."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:  # not gzip, or cut short
            raise IdxError(f"{path.name} is not a whole gzip file: {e}") from None
    return parse_idx(raw)


def read_idx_cached(path: Path, cache: Path) -> np.ndarray:
    """:func:`read_idx`, kept decoded in ``cache`` under a name that changes with the
    file's path, size and modification time (a replaced file is read afresh)."""
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()} {st.st_size} {st.st_mtime_ns}".encode()).hexdigest()
    decoded = cache / f"{path.name.split('.')[0]}-{key[:12]}.npy"
    try:
        return np.load(decoded, allow_pickle=False)
    except (OSError, ValueError):  # absent, or a damaged copy: decode again
        pass
    array = read_idx(path)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = decoded.with_name(f".{decoded.name}.partial-{os.getpid()}")
        with open(tmp, "wb") as f:  # a file object: np.save would add ".npy" to a name
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, decoded)  # atomic: a half-written copy is never read
    except OSError:  # a read-only cache: read the file each time
        pass
    return array
