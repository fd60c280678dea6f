"""Shared fixtures for the convae unit tests.

Real data: the MNIST / Fashion-MNIST files are looked up in ``$CONVAE_DATA_DIR``, else in
``../shared/datasets`` next to the repository. Tests that need them are skipped when
they are not there, except when ``$CI`` is set: CI must never pass by silently skipping.

Every test session gets its own ``$CONVAE_CACHE_DIR`` so that tests never read or write
the user's cache (``/tmp/convae-cache``).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

from convae.data import DATASETS, load_dataset

REPO = Path(__file__).resolve().parent.parent


def _data_root() -> Path | None:
    env = os.environ.get("CONVAE_DATA_DIR")
    if env:
        return Path(env)
    default = REPO.parent / "shared" / "datasets"
    return default if default.is_dir() else None


def missing_data(reason: str) -> None:
    """Skip the test, or fail it when running in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: tests needing data must not be skipped)")
    pytest.skip(reason)


def require_dataset(root: Path | None, name: str) -> Path:
    """``root`` if it holds the files of dataset ``name``; skips (fails in CI) otherwise."""
    if root is None:
        missing_data("no data folder: set CONVAE_DATA_DIR or provide ../shared/datasets")
    missing = [f for f in DATASETS[name].files if not (root / f).is_file()]
    if missing:
        missing_data(f"{name} is not in {root} (missing {', '.join(missing)})")
    return root


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """A session-wide cache folder instead of the user's."""
    cache = tmp_path_factory.mktemp("convae-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVAE_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data folder holding MNIST (skips, or fails in CI, when there is none)."""
    return require_dataset(_data_root(), "mnist")


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    return require_dataset(_data_root(), "fashion-mnist")


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
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)

    def no_network(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)


@pytest.fixture
def images() -> torch.Tensor:
    """A small deterministic float batch in [0, 1]: (4, 1, 28, 28)."""
    return torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
