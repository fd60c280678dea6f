"""A throwaway PostgreSQL server for the tests: Debian's ``postgresql`` (installed by
``scripts/install-test-deps.sh``), its cluster in a temporary folder, on loopback only,
stopped afterwards.

``initdb`` refuses to run as root; then the cluster belongs to the ``postgres`` user
that Debian's package creates (or ``nobody``), and the server runs as that user, in a
folder of its own under the system's temporary folder (pytest's are private to root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app_server import free_port


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (Debian keeps them out of PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _owner() -> str | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and there is no postgres or nobody user for initdb")


def _run(cmd: list[str], user: str | None) -> None:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {(done.stderr or done.stdout).strip()}")


@contextlib.contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """A running PostgreSQL on 127.0.0.1; yields its SQLAlchemy URL (database
    ``postgres``, user ``convae``, no password: trust on loopback)."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    user = _owner()
    if user is not None:
        folder = Path(tempfile.mkdtemp(prefix="convae-postgres-"))
        info = pwd.getpwnam(user)
        os.chown(folder, info.pw_uid, info.pw_gid)
    folder.mkdir(parents=True, exist_ok=True)
    data, sockets, log = folder / "data", folder / "sockets", folder / "server.log"
    _run(["mkdir", "-p", str(sockets)], user)
    _run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "convae", "-A", "trust", "-E", "UTF8"],
        user,
    )
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    pg_ctl = str(bin_dir / "pg_ctl")
    _run([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], user)
    try:
        yield f"postgresql+pg8000://convae@127.0.0.1:{port}/postgres"
    finally:
        _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], user)
        if user is not None:
            shutil.rmtree(folder, ignore_errors=True)
