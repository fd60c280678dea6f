"""Saving a user's model into the checkpoint folder under a name they chose.

The name comes from a text box, so it is reduced to a safe file name (letters, digits,
``-`` and ``_``; no folders, no dots), the pretrained files listed in the index are never
replaced, and an existing file is replaced only when asked. The write itself is
:func:`convae.nn.checkpoint.save_checkpoint`'s: atomic, so a reader never sees half a file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from convae.base.errors import ConvaeError
from convae.nn.checkpoint import save_checkpoint
from convae.nn.models import Autoencoder
from convae.nn.zoo import read_index

MAX_NAME = 60


def safe_name(name: str) -> str:
    """``"My model (v2).pt"`` -> ``"My-model-v2"``; raises ConvaeError if nothing is left.

    Anything but ASCII letters, digits, ``-`` and ``_`` becomes ``-``; a trailing ``.pt``
    is dropped; the result is at most 60 characters.
    """
    stem = re.sub(r"\.pth?$", "", name.strip(), flags=re.IGNORECASE)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:MAX_NAME].strip("-_")
    if not stem:
        raise ConvaeError(f"{name!r} is not a usable name: use letters, digits, - or _")
    return stem


def save_user_model(
    directory: str | Path,
    name: str,
    model: Autoencoder,
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save ``model`` as ``directory/<safe name>.pt``; returns the path.

    Raises:
        ConvaeError: the name is empty after cleaning, belongs to a pretrained checkpoint
            in the index, or exists and ``overwrite`` is false.
    """
    directory = Path(directory)
    path = directory / f"{safe_name(name)}.pt"
    protected = {e["file"] for e in read_index(directory)} if directory.is_dir() else set()
    if path.name in protected:
        raise ConvaeError(
            f"{path.name} is a pretrained checkpoint of this project and is "
            "never replaced; choose another name"
        )
    if path.exists() and not overwrite:
        raise ConvaeError(f"{path.name} already exists; choose another name or allow replacing it")
    return save_checkpoint(path, model, meta)
