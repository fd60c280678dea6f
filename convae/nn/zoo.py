"""The pretrained models shipped in ``checkpoints/`` and their index.

``checkpoints/index.json`` is written by ``scripts/train_checkpoints.py`` and holds one
entry per file::

    {"file": "mnist-conv-upsample.pt", "arch": "conv-upsample", "dataset": "mnist",
     "train_noise": "none", "latent_size": 196, "params": 1477, "epochs": 10,
     "test_images": 10000,
     "metrics": {"clean": {"mse": ..., "psnr": ..., "ssim": ...},
                 "gaussian:0.1": {..., "noisy_mse": ..., "noisy_psnr": ..., "noisy_ssim": ...},
                 "gaussian:0.3": {...}, "gaussian:0.5": {...}}}

Beside the entries, ``"baselines"`` holds, per dataset, what needs no training measured
the same way (see ``scripts/train_checkpoints.py``): PCA with every code size the
entries use, and the classical filters with their strengths chosen on training images::

    "baselines": {"mnist": {"test_images": 10000,
        "pca": [{"latent_size": 196, "params": 154448, "metrics": {"clean": ..., ...}}],
        "classical": [{"name": "non-local means", "strengths": {"gaussian:0.1": 0.08},
                       "metrics": {"gaussian:0.1": ..., ...}}],
        "check": {"n": 300, "noise": "gaussian:0.3", "pca": {"196": {...}},
                  "classical": {"non-local means": {...}}},
        "strengths": {"none": {...}, "gaussian:0.05": {"total variation": 0.016, ...}},
        "sweeps": {"gaussian": {"kind": "gaussian", "levels": [...], "n_images": 256,
                                "seed": 0, "psnr": {...}, "ssim": {...}}, ...}}}

``check`` repeats the figures on the first ``n`` test images at one noise level, so a
test reproduces them in seconds; ``strengths`` are the classical filters' strengths for
every noise kind at the app's slider levels (see :mod:`convae.measuring.tuning`), and ``sweeps``
their noise sweep for each kind (:func:`convae.measuring.tuning.classical_sweep_for`).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from convae.base.errors import CheckpointError

CHECKPOINT_DIR_ENV = "CONVAE_CHECKPOINT_DIR"
INDEX = "index.json"


def checkpoint_dir() -> Path:
    """``$CONVAE_CHECKPOINT_DIR``; else the checkout's ``checkpoints/`` folder; else, in an
    installed package, the copy of it that travels inside the package."""
    env = os.environ.get(CHECKPOINT_DIR_ENV)
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]  # convae/, above this layer's folder
    checkout = package.parent / "checkpoints"
    return checkout if (checkout / INDEX).is_file() else package / "shipped"


def read_index(directory: str | Path | None = None) -> list[dict[str, Any]]:
    """The index's entries (empty if there is no index yet)."""
    path = Path(directory or checkpoint_dir()) / INDEX
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())["checkpoints"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint index ({e})") from None
    return [e for e in entries if isinstance(e, dict) and "file" in e]


def read_baselines(directory: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The index's baselines by dataset (empty if the index has none)."""
    path = Path(directory or checkpoint_dir()) / INDEX
    if not path.exists():
        return {}
    try:
        baselines = json.loads(path.read_text()).get("baselines", {})
    except (OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint index ({e})") from None
    return {k: v for k, v in baselines.items() if isinstance(v, dict)}


@functools.lru_cache(maxsize=8)
def _baselines_at(folder: str, stamp: int) -> dict[str, dict[str, Any]]:
    return read_baselines(folder)


def shipped_baselines(dataset: str) -> dict[str, Any]:
    """:func:`read_baselines` of the checkpoint folder for ``dataset`` ({} if none), read
    once per version of the index (a page asks on every run)."""
    path = checkpoint_dir() / INDEX
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    return _baselines_at(str(path.parent), stamp).get(dataset, {})


def write_index(
    entries: list[dict[str, Any]],
    directory: str | Path | None = None,
    baselines: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write the index atomically (temporary file, then rename). ``baselines`` replaces
    the index's baselines; without it, those already in the index are kept."""
    path = Path(directory or checkpoint_dir()) / INDEX
    if baselines is None:
        baselines = read_baselines(directory)
    content: dict[str, Any] = {"checkpoints": entries}
    if baselines:
        content["baselines"] = baselines
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def find_entry(
    dataset: str, arch: str, directory: str | Path | None = None
) -> dict[str, Any] | None:
    for entry in read_index(directory):
        if entry.get("dataset") == dataset and entry.get("arch") == arch:
            return entry
    return None


def resolve_path(path: str | Path) -> Path:
    """``path`` itself if it exists; else a shipped checkpoint of that name (``.pt`` may be
    left out), so ``convae eval mnist-conv-upsample`` works wherever the package is."""
    path = Path(path)
    if path.exists() or path.parent != Path("."):
        return path
    for name in (path.name, f"{path.name}.pt"):
        shipped = checkpoint_dir() / name
        if shipped.is_file():
            return shipped
    return path
