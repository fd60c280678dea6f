"""Writing a file so that readers see all of it or none of it, and making a cached file
once however many processes want it.

A save that is killed halfway (a crash, a full disk, a student closing the laptop) must
never leave a half-written checkpoint, decoded dataset or board file where a reader
expects a whole one. A slow result kept in the cache folder (a decoded dataset, a
dataset's PCA) is made by one process while the others wanting it (a class server's
replicas, the test suite's workers) wait for its file instead of making it beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

STALE_TMP_S = 600  # a save takes well under a second; older temporaries are leftovers


def write_atomically(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` so that it is either all there or not at all: a
    temporary file in the same folder, fsync, rename (a killed writer leaves only a
    temporary, which :func:`remove_stale_temporaries` deletes later); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide a shared model from others
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    remove_stale_temporaries(path.parent, STALE_TMP_S, name=path.name)
    return path


def remove_stale_temporaries(
    directory: str | Path, older_than_s: float = 3600, name: str | None = None
) -> list[Path]:
    """Delete the temporary files of saves that never finished (a killed process).

    They are named ``.NAME.<random>.tmp`` by :func:`write_atomically`; only those older
    than ``older_than_s`` are removed, so a save in progress elsewhere is left alone.
    Returns what was removed.
    """
    removed = []
    now = time.time()
    pattern = f".{glob.escape(name) if name else '*'}.*.tmp"
    for p in Path(directory).glob(pattern):
        try:
            if now - p.stat().st_mtime >= older_than_s and p.is_file():
                p.unlink()
                removed.append(p)
        except OSError:
            pass  # gone already, or not ours to delete
    return removed


@contextlib.contextmanager
def one_at_a_time(path: Path) -> Iterator[None]:
    """Held by one thread or process at a time for ``path`` (a lock file beside it).
    Where no lock can be had (a read-only folder, a file system without locks), it
    does not wait: each caller then works on its own, as without it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(f".{path.name}.lock"), "a")
    except OSError:
        yield
        return
    with lock:
        with contextlib.suppress(OSError):
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _load_whole(path: Path) -> dict[str, Any] | None:
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a damaged cache file is made again
            pass
    return None


def kept(path: Path, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The tensors and plain values saved in ``path`` if it is there and whole; else
    ``make()``, saved there for next time (where the folder can be written). Made once:
    a second caller waits for the first one's file (:func:`one_at_a_time`)."""
    found = _load_whole(path)
    if found is not None:
        return found
    with one_at_a_time(path):
        found = _load_whole(path)  # made meanwhile by the caller we waited for
        if found is not None:
            return found
        made = make()
        buffer = io.BytesIO()
        torch.save(made, buffer)
        with contextlib.suppress(OSError):  # no cache: made again next time
            write_atomically(path, buffer.getbuffer())
        return made
