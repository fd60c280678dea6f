"""Shared fixtures for the convae tests (the helpers behind them are in ``support.py``).

Real data: the MNIST / Fashion-MNIST files are looked up in ``$CONVAE_DATA_DIR``, else in
``../shared/datasets`` next to the repository (else ``./data``). Tests that need them are
skipped when they are not there, except when ``$CI`` is set: CI must never pass by
silently skipping.

Every test session gets its own ``$CONVAE_CACHE_DIR`` so that tests never read or write
the user's cache (``/tmp/convae-cache``); the Streamlit server of the browser tests
shares it, so that it finds MNIST already extracted.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
from support import REPO, data_folder, missing, require_dataset, streamlit_server

from convae.data.datasets import load_dataset

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pyproject runs the suite on two workers (pytest-xdist), one per core: one torch
    # thread each, so that they do not wait on each other's cores
    torch.set_num_threads(1)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# What makes a test `slow` (left out of the fast tier, `pytest -m "not slow"`): a real
# browser, a real app server, nginx in front of replicas, a PostgreSQL server. Marked here
# by the fixtures it uses, so a new test of that kind is slow without anyone remembering;
# the other kinds (pyproject.toml's `markers`) carry @pytest.mark.slow themselves.
SERVER_FIXTURES = {"browser", "app_server", "front", "postgres_url"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        values = params.params.values() if params is not None else ()
        on_postgres = any(isinstance(v, str) and v == "postgresql" for v in values)
        if on_postgres or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """A cache folder for this test run instead of the user's, shared by the run's
    workers: a dataset decoded by one of them (CIFAR-10's 60,000 PNGs) is read by the
    other, as by a class server's replicas."""
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers' folders share a parent
        cache = tmp_path_factory.getbasetemp().parent / "convae-cache"
        cache.mkdir(exist_ok=True)
    else:
        cache = tmp_path_factory.mktemp("convae-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVAE_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="session", autouse=True)
def isolated_board(tmp_path_factory) -> Path:
    """A session-wide challenge board (SQLite file and weights) instead of ``./board``;
    the servers the tests start inherit it. No database URL or teacher passphrase from
    the machine's environment leaks in."""
    board = tmp_path_factory.mktemp("board")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVAE_BOARD_DIR", str(board))
        mp.delenv("CONVAE_DATABASE_URL", raising=False)
        mp.delenv("CONVAE_TEACHER_PASSPHRASE", raising=False)
        yield board


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory) -> str:
    """A real PostgreSQL server on loopback for this test session (Debian's
    ``postgresql``, a cluster in a temporary folder); skips without it, fails in CI."""
    from postgres import binaries, postgres_server

    if binaries() is None:
        missing("PostgreSQL is not installed (apt-get install postgresql)")
    with postgres_server(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data folder holding MNIST (skips, or fails in CI, when there is none)."""
    return require_dataset(data_folder(), "mnist")


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    return require_dataset(data_folder(), "fashion-mnist")


@pytest.fixture(scope="session")
def mnist_test(data_root):
    return load_dataset("mnist", train=False, root=data_root)


@pytest.fixture(scope="session")
def mnist_train_small(data_root):
    """The first 256 MNIST training images: enough for a few optimizer steps."""
    return load_dataset("mnist", train=True, root=data_root).subset(limit=256)


@pytest.fixture
def offline(monkeypatch):
    """No network, whatever the machine has: name lookups fail at once.

    torchvision falls back to downloading missing files; this makes that fail fast and
    the same way everywhere, instead of depending on the machine's network.
    """
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)

    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)


@pytest.fixture
def images() -> torch.Tensor:
    """A small deterministic float batch in [0, 1]: (4, 1, 28, 28)."""
    return torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------ the app
@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright; skipped
    without either, except when ``$CI`` is set (then it fails)."""
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Server:
    """A running ``streamlit run app.py``: its URL, its output so far, its models."""

    def __init__(self, url: str, log: Path, checkpoints: Path):
        self.url, self.log, self.checkpoints = url, log, checkpoints

    def output(self, since: int = 0) -> str:
        """What the server printed, from character ``since`` on."""
        return self.log.read_text()[since:]


@pytest.fixture(scope="module")
def app_server(data_root, tmp_path_factory) -> Server:
    """The real app on 127.0.0.1, on MNIST. Models: ``$CONVAE_CHECKPOINT_DIR`` if set,
    else the repository's ``checkpoints/`` (never written: the tests save nothing)."""
    checkpoints = Path(os.environ.get("CONVAE_CHECKPOINT_DIR") or REPO / "checkpoints")
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {"CONVAE_DATA_DIR": str(data_root), "CONVAE_CHECKPOINT_DIR": str(checkpoints)}
    with streamlit_server(env, log) as url:
        yield Server(url, log, checkpoints)
