"""Writing a file so that readers see all of it or none of it.

A save that is killed halfway (a crash, a full disk, a student closing the laptop) must
never leave a half-written checkpoint, decoded dataset or board file where a reader
expects a whole one.
"""

from __future__ import annotations

import glob
import os
import tempfile
import time
from pathlib import Path

STALE_TMP_S = 600  # a save takes well under a second; older temporaries are leftovers


def write_atomically(path: str | Path, data: bytes) -> Path:
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
