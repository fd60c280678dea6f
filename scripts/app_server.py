"""Start ``streamlit run app.py`` on a free loopback port and wait until it answers.

The one place that launches the app as a real server: the browser tests
(``tests/support.py``), ``benchmarks/browser_load.py`` and ``benchmarks/classroom_load.py``
all start it through :func:`start`. The server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """The server did not start (its message ends with the tail of its log)."""


@dataclass
class Started:
    proc: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    port: int
    log: Path


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (all its threads) so far; None if it
    cannot be read (gone, or not ours)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_up(url: str) -> bool:
    """Whether the server at ``url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.read() == b"ok"
    except OSError:
        return False


def start(
    env: Mapping[str, str] | None,
    log: Path,
    *,
    port: int | None = None,
    timeout_s: float = 90,
    launcher: Sequence[str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Started:
    """``streamlit run app.py`` from the repository root, once it answers.

    Args:
        env: variables added to this process's environment (None: none added).
        log: file that receives the server's stdout and stderr.
        port: the port to listen on (default: a free one).
        timeout_s: how long it may take to answer its health check.
        launcher: the command that stands for ``python -m streamlit`` (e.g. a wrapper
            that times each script run); ``run app.py ...`` is appended to it.
        preexec_fn: run in the child before Python starts (e.g. to pin its CPUs).

    Raises:
        ServerError: it exited or did not answer within ``timeout_s`` (it is killed).
    """
    port = port or free_port()
    command = [
        *(launcher or [sys.executable, "-m", "streamlit"]),
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        HOST,
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + timeout_s
    while not is_up(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc, kill=True)
            tail = log.read_text(errors="replace")[-3000:]
            raise ServerError(f"streamlit did not start (log {log}):\n{tail}")
        time.sleep(0.25)
    return Started(proc, url, port, log)


def stop(proc: subprocess.Popen, kill: bool = False) -> None:
    """Ends the server: ``kill`` at once (its log is complete already), else SIGTERM
    first (Streamlit then takes a second to shut down) and SIGKILL after 20 s."""
    if proc.poll() is not None:
        return
    if kill:
        proc.kill()
    else:
        proc.terminate()
        try:
            proc.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait(timeout=20)


@contextlib.contextmanager
def serving(env: Mapping[str, str] | None, log: Path, **kwargs) -> Iterator[Started]:
    """:func:`start`, then :func:`stop` (gracefully) when the block ends."""
    server = start(env, log, **kwargs)
    try:
        yield server
    finally:
        stop(server.proc)
