"""Where the current model and the data come from, and the session's own models.

Session state is initialised in one place, :func:`init_state`, called by ``app.py`` on
every run. Shared, read-only things (datasets, shipped checkpoints, untrained models)
are loaded once per server with ``st.cache_resource``; their models are in eval mode
with gradients switched off, and nothing ever trains them (training copies first).
Models a user trains or uploads live in that user's session only.
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from convae import (ARCHITECTURES, Autoencoder, Checkpoint, CheckpointError, DatasetError,
                    ImageSet, ModelConfig, build_model, load_checkpoint, load_dataset)
from convae.data import DATASETS, source_root
from convae.zoo import checkpoint_dir, read_index

DATASET_LABELS = {"mnist": "MNIST (handwritten digits)",
                  "fashion-mnist": "Fashion-MNIST (clothes)",
                  "cifar10": "CIFAR-10 (small colour photos)"}
DEFAULT_DATASET = "mnist"
DEFAULT_ARCH = "conv-upsample"
FAILURE_TTL_S = 60  # a dataset that failed to load is not retried on every rerun


def init_state() -> None:
    """Every session-state key the app uses, with its default (the one place)."""
    defaults: dict[str, Any] = {
        "sid": uuid.uuid4().hex[:12],  # makes cache keys of this session's models unique
        "dataset": DEFAULT_DATASET,
        "arch": DEFAULT_ARCH,
        "model_id": None,  # chosen in the sidebar; None = the default for dataset/arch
        "session_models": {},  # id -> SessionModel: trained or uploaded here
        "next_model_no": 1,
        "job": None,  # the TrainingJob of this session, if any
        "job_adopted": False,  # its model was added to session_models
        "pending_select": None,  # (dataset, arch, model_id) to apply before the sidebar
        "upload_message": None,  # (level, text) about the last checkpoint upload
        "present": False,  # presenter mode (the sidebar's toggle; ?present=1 in a link)
    }
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def freeze(model: Autoencoder) -> Autoencoder:
    """Eval mode and no gradients: a shared model that cannot be trained by accident."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ----------------------------------------------------------------------------- data
_failures: dict[tuple[str, bool, str], tuple[float, str]] = {}


@st.cache_resource(show_spinner="Loading the dataset (once per server)...")
def _load_dataset(name: str, train: bool, root: str) -> ImageSet:
    return load_dataset(name, train=train, root=root)


def get_dataset(name: str, train: bool = False) -> ImageSet:
    """The dataset split, loaded once per server; raises DatasetError if it is missing."""
    root = str(source_root(name))
    key = (name, train, root)
    failed = _failures.get(key)
    if failed and time.monotonic() - failed[0] < FAILURE_TTL_S:
        raise DatasetError(failed[1])
    try:
        return _load_dataset(name, train, root)
    except DatasetError as e:
        _failures[key] = (time.monotonic(), str(e))
        raise


def dataset_shape(name: str) -> tuple[int, int, int]:
    return DATASETS[name].shape


def require_dataset(name: str, train: bool = False) -> ImageSet:
    """The dataset, or an explanation on the page and the page stops here."""
    try:
        return get_dataset(name, train)
    except DatasetError as e:
        missing_message(name, e)
        st.stop()


def missing_message(name: str, error: Exception) -> None:
    """Short: what is missing and what to do (the error says which files, and where)."""
    label = DATASET_LABELS.get(name, name)
    st.error(f"**{label} is not on this server.** Choose another dataset in the sidebar "
             f"(MNIST always works), or ask whoever runs the server: {error}",
             icon=":material/folder_off:")


# ---------------------------------------------------------------------------- models
@dataclass
class SessionModel:
    """A model that belongs to this session: trained here or uploaded."""

    model: Autoencoder
    meta: dict[str, Any]
    label: str
    arch: str
    dataset: str


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
        return self.model.config.arch

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
        entries.append(FileEntry(e["file"], e["arch"], e.get("dataset", ""),
                                 f"Pretrained{extra}{_psnr_label(e.get('metrics', {}))}",
                                 True, e.get("metrics", {})))
    for name, mtime_ns in stamp:
        if name in seen or name == "index.json":
            continue
        try:
            ckpt = _load_file(str(folder / name), mtime_ns)
        except CheckpointError:
            continue  # not ours to judge here; it simply is not offered
        entries.append(FileEntry(name, ckpt.config.arch, ckpt.dataset or "",
                                 f"Saved: {name}{_psnr_label(ckpt.meta.get('metrics', {}))}",
                                 False, ckpt.meta.get("metrics", {})))
    return entries


def file_entries() -> list[FileEntry]:
    """Checkpoints in the checkpoint folder: the index's, then any other ``*.pt``."""
    folder = checkpoint_dir()
    if not folder.is_dir():
        return []
    # dot files are unfinished saves (``.NAME.*.tmp``) or hidden; never offered
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.pt")
                         if not p.name.startswith(".")))
    index = folder / "index.json"
    stamp += (("index.json", index.stat().st_mtime_ns),) if index.exists() else ()
    return _file_entries(str(folder), stamp)


def model_choices(dataset: str, arch: str | None = None) -> dict[str, str]:
    """``{id: label}`` of the models for ``dataset`` (and ``arch`` if given), best first."""
    choices: dict[str, str] = {}
    for e in file_entries():
        if e.dataset == dataset and (arch is None or e.arch == arch):
            choices[f"file:{e.file}"] = e.label if arch else f"{e.arch} · {e.label}"
    models: dict[str, SessionModel] = st.session_state["session_models"]
    for mid, m in reversed(list(models.items())):
        if m.dataset == dataset and (arch is None or m.arch == arch):
            choices[mid] = m.label if arch else f"{m.arch} · {m.label}"
    for a in ([arch] if arch else ARCHITECTURES):
        choices[f"untrained:{a}"] = "Untrained (random weights)" if arch else f"{a} · untrained"
    return choices


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
            raise CheckpointError(f"{name} was trained for input {ckpt.config.in_shape}, "
                                  f"not {dataset} {shape}")
        return ModelRef(model_id, f"file:{path}:{mtime}", name, "file", ckpt.model, ckpt.meta)
    if kind == "session":
        m = st.session_state["session_models"].get(model_id)
        if m is None:
            raise CheckpointError("that model is no longer in this session; choose another")
        return ModelRef(model_id, f"session:{st.session_state['sid']}:{name}", m.label,
                        "session", m.model, m.meta)
    arch = name if name in ARCHITECTURES else DEFAULT_ARCH
    return ModelRef(f"untrained:{arch}", f"untrained:{arch}:{shape}",
                    f"{arch} (untrained)", "untrained", untrained_model(arch, shape), {})


def current_model() -> ModelRef:
    """The model chosen in the sidebar (the sidebar makes sure the choice is valid)."""
    dataset = st.session_state["dataset"]
    model_id = st.session_state["model_id"] or f"untrained:{st.session_state['arch']}"
    try:
        return resolve(model_id, dataset)
    except CheckpointError as e:
        st.error(f"The chosen model cannot be used: {e}. Showing the untrained model instead.")
        return resolve(f"untrained:{st.session_state['arch']}", dataset)


def add_session_model(model: Autoencoder, meta: dict[str, Any], label: str, dataset: str,
                      select: bool = True) -> str:
    """Keep ``model`` in this session; optionally make it the current model (next run)."""
    n = st.session_state["next_model_no"]
    st.session_state["next_model_no"] = n + 1
    mid = f"session:{n}"
    st.session_state["session_models"][mid] = SessionModel(
        freeze(model), dict(meta), f"#{n} {label}", model.config.arch, dataset)
    if select:
        st.session_state["pending_select"] = (dataset, model.config.arch, mid)
    return mid


def private_copy(model: Autoencoder) -> Autoencoder:
    """A copy for operations that attach hooks: the cached model is shared by every
    session's thread, and a hook on it would see other users' forward passes."""
    return copy.deepcopy(model)


def no_grad_eval():
    """The context for every forward pass the pages make."""
    return torch.inference_mode()
