"""Saving and loading models safely.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values:

    {"format": "convae-checkpoint", "format_version": 1,
     "model": ModelConfig as dict, "state_dict": weights,
     "meta": {"dataset", "train_noise", "train", "metrics", "history", "versions", ...}}

Saving is atomic (write a temporary file in the same folder, fsync, rename), so an
interrupted save leaves the previous file intact. Loading uses ``weights_only=True``:
torch's restricted unpickler, which refuses to build arbitrary objects, so a crafted file
cannot run code. Every way a file can be wrong ends in one :class:`CheckpointError`.
"""

from __future__ import annotations

import importlib.metadata
import io
import platform
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import torch

from convae.base.errors import CheckpointError
from convae.base.files import write_atomically
from convae.base.version import __version__
from convae.nn.config import ModelConfig
from convae.nn.models import Autoencoder, build_model

FORMAT = "convae-checkpoint"
FORMAT_VERSION = 1
MAX_BYTES = 50 * 1024 * 1024  # far above any convae model (the largest is < 1 MB)


@dataclass
class Checkpoint:
    """A loaded (or about to be saved) model with its description."""

    model: Autoencoder
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def dataset(self) -> str | None:
        return self.meta.get("dataset")


def versions() -> dict[str, str]:
    return {
        "convae": __version__,
        "torch": str(torch.__version__),
        # from the installed package's metadata: importing torchvision takes a second or two
        "torchvision": importlib.metadata.version("torchvision"),
        "python": platform.python_version(),
    }


def to_bytes(model: Autoencoder, meta: dict[str, Any] | None = None) -> bytes:
    """The checkpoint file's content, e.g. for a download button."""
    meta = dict(meta or {})
    meta.setdefault("versions", versions())
    meta.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("latent_size", model.latent_size)
    meta.setdefault("params", model.num_params)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def save_checkpoint(
    path: str | Path, model: Autoencoder, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` and ``meta`` to ``path`` atomically; returns the path.

    An existing file at ``path`` is replaced only once the new one is fully on disk.
    """
    return write_atomically(path, to_bytes(model, meta))


def _read(source: str | Path | bytes | BinaryIO, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "the uploaded file"
    elif isinstance(source, (str, Path)):
        p = Path(source)
        name = str(p)
        if not p.is_file():
            raise CheckpointError(f"no checkpoint at {p}: the file does not exist")
        if p.stat().st_size > max_bytes:
            raise CheckpointError(
                f"{p} is {p.stat().st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB "
                "limit for a convae checkpoint; is it the right file?"
            )
        data = p.read_bytes()
    else:
        data, name = source.read(max_bytes + 1), getattr(source, "name", "the uploaded file")
    if len(data) > max_bytes:
        raise CheckpointError(
            f"{name} is over the {max_bytes / 1e6:.0f} MB limit for a convae checkpoint"
        )
    if not data:
        raise CheckpointError(f"{name} is empty: not a convae checkpoint")
    return data, name


def load_checkpoint(
    source: str | Path | bytes | BinaryIO,
    *,
    expect_shape: tuple[int, int, int] | None = None,
    max_bytes: int = MAX_BYTES,
) -> Checkpoint:
    """Read a checkpoint without running any code from it and rebuild its model.

    Args:
        source: a path, the file's bytes, or a binary file object.
        expect_shape: if given, the model must take this input shape (C, H, W).
        max_bytes: larger files are refused before they are read.

    Returns:
        The model in eval mode and the checkpoint's ``meta``.

    Raises:
        CheckpointError: missing, empty, oversized, truncated, corrupted, unsafe (it
            would execute code), not a convae checkpoint, or weights that do not fit
            the architecture or the expected shape.
    """
    data, name = _read(source, max_bytes)
    _check_zip(data, name, max_bytes)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError, EOFError, zip errors, ...
        # torch puts a generic note on weights_only before every unpickler error (random
        # bytes included); only a refused global (a named function or class) means code
        text = str(e)
        lines = [s.strip() for s in text.split("WeightsUnpickler error:")[-1].splitlines()]
        first = next((s for s in lines if s), type(e).__name__)
        if "unsupported global" in text.lower():
            why = "it contains objects that could run code when loaded, so it was refused"
        else:
            why = f"it is truncated, corrupted or not a torch file ({first[:160]})"
        raise CheckpointError(f"cannot load {name}: {why}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{name} is a torch file but not a convae checkpoint (no '{FORMAT}' marker); "
            "save models with convae (`python -m convae train`) or the app"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{name} has checkpoint format version {payload.get('format_version')!r}; "
            f"this convae reads version {FORMAT_VERSION}"
        )
    try:
        config = ModelConfig.from_dict(dict(payload["model"]))
        # a few bytes can describe a model of billions of weights (hidden=10**9): build
        # it on the meta device (shapes, no memory) and allocate only once the file's
        # own weights, which its size bounds, are known to fit
        with torch.device("meta"):
            skeleton = build_model(config)
    except Exception as e:  # ConfigError, but also overflows from absurd sizes
        raise CheckpointError(
            f"{name} describes a model convae cannot build: {_first_line(e)}"
        ) from None
    if expect_shape is not None and tuple(config.in_shape) != tuple(expect_shape):
        raise CheckpointError(
            f"{name} is a {config.arch} model for input shape {tuple(config.in_shape)}, but "
            f"{tuple(expect_shape)} is needed here; pick a checkpoint trained on this dataset"
        )
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{name} has no weights (state_dict missing)")
    try:
        skeleton.load_state_dict(state, strict=True, assign=True)  # checks names and shapes only
        model = build_model(config)
        model.load_state_dict(state, strict=True)
    except Exception as e:
        lines = str(e).strip().splitlines()
        detail = " ".join(line.strip() for line in lines[1:3]) or lines[0]
        raise CheckpointError(
            f"{name}: the weights do not fit a {config.arch} model for input "
            f"{tuple(config.in_shape)} ({detail[:200]})"
        ) from None
    meta = payload.get("meta")
    return Checkpoint(model.eval(), dict(meta) if isinstance(meta, dict) else {})


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _check_zip(data: bytes, name: str, max_bytes: int) -> None:
    """Refuse a zip (torch's file format) that would unpack to more than ``max_bytes``,
    or whose contents no longer match their checksums.

    ``torch.save`` stores its entries uncompressed, but ``torch.load`` also reads
    deflated ones: a 200 KB upload could otherwise unpack to gigabytes of weights.
    Every entry carries a CRC-32 that ``torch.load`` does not verify: without this check
    a flipped byte in the weights loads silently as a different model.
    """
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return  # not a zip: torch.load decides (legacy format, or an error message)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            unpacked = sum(i.file_size for i in infos)
            if any(i.compress_type != zipfile.ZIP_STORED for i in infos) or unpacked > max_bytes:
                raise CheckpointError(
                    f"cannot load {name}: it is a compressed archive (it would unpack to "
                    f"{unpacked / 1e6:.0f} MB); convae and torch.save write checkpoints "
                    "uncompressed"
                )
            damaged = z.testzip()  # reads every entry: stored, at most max_bytes in all
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CheckpointError(
            f"cannot load {name}: it is truncated, corrupted or not a torch file ({_first_line(e)})"
        ) from None
    if damaged is not None:
        raise CheckpointError(
            f"cannot load {name}: it is corrupted (the contents of "
            f"{damaged!r} do not match their checksum)"
        )
