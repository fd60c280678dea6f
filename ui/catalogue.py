"""Which models the app offers, and loading them: the shipped and saved checkpoints, the
session's own models, untrained ones.

Shared, read-only models (checkpoints, untrained models) are loaded once per server
with ``st.cache_resource``, in eval mode with gradients switched off, and nothing ever
trains them (training copies first). The session's own models are listed here but
kept by :mod:`ui.state`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from convae import (
    ARCHITECTURES,
    Autoencoder,
    Checkpoint,
    CheckpointError,
    ModelConfig,
    build_model,
    load_checkpoint,
)
from convae.data.datasets import DATASETS
from convae.measuring.pca import PCAModel, fit_pca, pca_for
from convae.nn.checkpoint import to_bytes
from convae.nn.zoo import checkpoint_dir, read_index

from . import own_images

DEFAULT_ARCH = "conv-upsample"


def freeze(model: Autoencoder) -> Autoencoder:
    """Eval mode and no gradients: a shared model that cannot be trained by accident."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def private_copy(model: Autoencoder) -> Autoencoder:
    """A copy for operations that attach hooks: the cached model is shared by every
    session's thread, and a hook on it would see other users' forward passes."""
    return copy.deepcopy(model)


@dataclass(frozen=True)
class ModelRef:
    """A model ready to use, with where it came from."""

    id: str  # the sidebar's choice: "file:<name>", "session:<n>" or "untrained:<arch>"
    key: str  # unique across sessions and file versions: safe as a cache key
    label: str
    kind: str  # "file", "session" or "untrained"
    model: Autoencoder
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def arch(self) -> str:
        return "pca" if self.kind == "pca" else self.model.config.arch

    @property
    def trained(self) -> bool:
        return self.kind != "untrained"


@dataclass(frozen=True)
class FileEntry:
    file: str
    arch: str
    dataset: str
    label: str
    shipped: bool  # listed in index.json (trained by the project) vs saved from the app
    metrics: dict[str, Any]


@st.cache_resource(show_spinner=False, max_entries=64)
def _load_file(path: str, mtime_ns: int) -> Checkpoint:
    ckpt = load_checkpoint(path)
    freeze(ckpt.model)
    return ckpt


@st.cache_resource(show_spinner=False)
def untrained_model(arch: str, shape: tuple[int, int, int]) -> Autoencoder:
    """Random initial weights (seed 0): what a model looks like before any training."""
    return freeze(build_model(ModelConfig(arch, shape), seed=0))


@st.cache_resource(show_spinner="Fitting PCA on the training images (once per server)...")
def _server_pca(dataset: str, k: int) -> PCAModel:
    return pca_for(dataset, k).eval()


# an uploaded dataset's name is its zip's hash: the same images in any session
@st.cache_resource(show_spinner="Fitting PCA on your training images...", max_entries=8)
def _own_pca(dataset: str, k: int) -> PCAModel:
    return fit_pca(own_images.get(dataset).train.images, k).eval()


def pca_model(dataset: str, k: int) -> PCAModel:
    """PCA with ``k`` components on the dataset's training split: the classical reference
    with the same code size as a model whose code has ``k`` values."""
    return (_own_pca if own_images.is_own(dataset) else _server_pca)(dataset, k)


def dataset_shape(dataset: str) -> tuple[int, int, int]:
    """The images' shape: a server dataset's, or this session's uploaded images'."""
    if own_images.is_own(dataset):
        return own_images.get(dataset).train.shape
    return DATASETS[dataset].shape


def _psnr_label(metrics: dict[str, Any]) -> str:
    clean = (metrics or {}).get("clean") or {}
    return f" · {clean['psnr']:.1f} dB" if isinstance(clean.get("psnr"), (int, float)) else ""


@st.cache_data(show_spinner=False, ttl=30)
def _file_entries(directory: str, stamp: tuple) -> list[FileEntry]:
    folder = Path(directory)
    entries: list[FileEntry] = []
    seen: set[str] = set()
    try:
        index = read_index(folder)
    except CheckpointError:
        index = []
    for e in index:
        if not (folder / e["file"]).is_file() or e.get("arch") not in ARCHITECTURES:
            continue
        seen.add(e["file"])
        noise = e.get("train_noise", "none")
        extra = "" if noise in (None, "none") else f", trained on {noise} noise"
        entries.append(
            FileEntry(
                e["file"],
                e["arch"],
                e.get("dataset", ""),
                f"Pretrained{extra}{_psnr_label(e.get('metrics', {}))}",
                True,
                e.get("metrics", {}),
            )
        )
    for name, mtime_ns in stamp:
        if name in seen or name == "index.json":
            continue
        try:
            ckpt = _load_file(str(folder / name), mtime_ns)
        except CheckpointError:
            continue  # not ours to judge here; it simply is not offered
        entries.append(
            FileEntry(
                name,
                ckpt.config.arch,
                ckpt.dataset or "",
                f"Saved: {name}{_psnr_label(ckpt.meta.get('metrics', {}))}",
                False,
                ckpt.meta.get("metrics", {}),
            )
        )
    return entries


def file_entries() -> list[FileEntry]:
    """Checkpoints in the checkpoint folder: the index's, then any other ``*.pt``."""
    folder = checkpoint_dir()
    if not folder.is_dir():
        return []
    # dot files are unfinished saves (``.NAME.*.tmp``) or hidden; never offered
    stamp = tuple(
        sorted(
            (p.name, p.stat().st_mtime_ns)
            for p in folder.glob("*.pt")
            if not p.name.startswith(".")
        )
    )
    index = folder / "index.json"
    stamp += (("index.json", index.stat().st_mtime_ns),) if index.exists() else ()
    return _file_entries(str(folder), stamp)


@dataclass(frozen=True)
class Choice:
    """One model on offer: its architecture and a short label ("Pretrained · 23.3 dB")."""

    id: str
    arch: str
    label: str

    @property
    def full_label(self) -> str:
        """The label with the architecture in front, for lists of every architecture."""
        return f"{self.arch} · {self.label}"


def model_choices(dataset: str, arch: str | None = None) -> dict[str, Choice]:
    """The models for ``dataset`` (and ``arch`` if given) by id, best first: shipped and
    saved checkpoints, this session's own models, then untrained ones."""
    choices: dict[str, Choice] = {}
    for e in file_entries():
        if e.dataset == dataset and (arch is None or e.arch == arch):
            choices[f"file:{e.file}"] = Choice(f"file:{e.file}", e.arch, e.label)
    models = st.session_state["session_models"]
    for mid, m in reversed(list(models.items())):
        if m.dataset == dataset and (arch is None or m.arch == arch):
            choices[mid] = Choice(mid, m.arch, m.label)
    for a in [arch] if arch else ARCHITECTURES:
        choices[f"untrained:{a}"] = Choice(f"untrained:{a}", a, "Untrained (random weights)")
    return choices


@dataclass(frozen=True)
class WeightsFile:
    """A model's weights as a file a student can take home."""

    name: str  # e.g. "mnist-conv-upsample.pt"
    shipped: bool  # ships with convae: found by name wherever it is installed
    data: Callable[[], bytes]  # the file's content, read or written when asked for


def weights_file(ref: ModelRef) -> WeightsFile | None:
    """The checkpoint file behind ``ref`` (a session's own model becomes one when it is
    downloaded); None for an untrained model, which is rebuilt from its seed instead."""
    kind, _, name = ref.id.partition(":")
    if kind == "file":
        path = checkpoint_dir() / name
        shipped = any(e.file == name and e.shipped for e in file_entries())
        return WeightsFile(name, shipped, path.read_bytes)
    if kind == "session":
        dataset = own_images.code_name(ref.meta.get("dataset") or "model").replace(":", "-")
        return WeightsFile(
            f"{dataset}-{ref.arch}-{name}.pt", False, lambda: to_bytes(ref.model, ref.meta)
        )
    return None


def pca_choices(dataset: str) -> dict[str, Choice]:
    """PCA with each code size the architectures use on ``dataset``: the classical
    reference a page can offer beside the models (ids ``pca:K``)."""
    shape = dataset_shape(dataset)
    sizes = sorted({untrained_model(a, shape).latent_size for a in ARCHITECTURES})
    return {f"pca:{k}": Choice(f"pca:{k}", "pca", f"{k} values, no training") for k in sizes}


def resolve(model_id: str, dataset: str) -> ModelRef:
    """The model behind a choice id (raises CheckpointError for a broken file)."""
    kind, _, name = model_id.partition(":")
    shape = dataset_shape(dataset)
    if kind == "file":
        path = checkpoint_dir() / name
        if not path.is_file():
            raise CheckpointError(f"{path} is gone; choose another model in the sidebar")
        mtime = path.stat().st_mtime_ns
        ckpt = _load_file(str(path), mtime)
        if tuple(ckpt.config.in_shape) != shape:
            raise CheckpointError(
                f"{name} was trained for input {ckpt.config.in_shape}, not {dataset} {shape}"
            )
        return ModelRef(model_id, f"file:{path}:{mtime}", name, "file", ckpt.model, ckpt.meta)
    if kind == "pca":
        limit = math.prod(shape)
        if not name.isdigit() or not 1 <= int(name) <= limit:
            raise CheckpointError(f"PCA needs a code size from 1 to {limit}, not {name!r}")
        k = int(name)
        return ModelRef(
            model_id, f"pca:{dataset}:{k}", f"PCA, {k} values", "pca", pca_model(dataset, k), {}
        )
    if kind == "session":
        m = st.session_state["session_models"].get(model_id)
        if m is None:
            raise CheckpointError("that model is no longer in this session; choose another")
        return ModelRef(
            model_id,
            f"session:{st.session_state['sid']}:{name}",
            m.label,
            "session",
            m.model,
            m.meta,
        )
    arch = name if name in ARCHITECTURES else DEFAULT_ARCH
    return ModelRef(
        f"untrained:{arch}",
        f"untrained:{arch}:{shape}",
        f"{arch} (untrained)",
        "untrained",
        untrained_model(arch, shape),
        {},
    )
