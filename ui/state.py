"""The session: its state, the data it works on, its current model and its own models.

Session state is initialised in one place, :func:`init_state`, called by ``app.py`` on
every run. Datasets are loaded once per server with ``st.cache_resource``. The pages see
a test split without the images held out for the class challenges
(:func:`convae.classroom.challenge.held_out_indices`): nobody can look at or tune on them. Models a
user trains or uploads live in that user's session only; which models exist and how
they load is :mod:`ui.catalogue`'s.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from convae import Autoencoder, CheckpointError, DatasetError, ImageSet, load_dataset
from convae.classroom import worker
from convae.classroom.challenge import held_out_indices, public_indices
from convae.classroom.jobs import TrainingJob
from convae.classroom.queue import Place, TrainingQueue, queue_from_env
from convae.data.datasets import source_root

from . import catalogue, own_images
from .catalogue import DEFAULT_ARCH, ModelRef, freeze, resolve

DATASET_LABELS = {
    "mnist": "MNIST (handwritten digits)",
    "fashion-mnist": "Fashion-MNIST (clothes)",
    "cifar10": "CIFAR-10 (small colour photos)",
}
DEFAULT_DATASET = "mnist"
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
        "stepper": None,  # the Train page's step-by-step model (convae.classroom.stepper.Stepper)
        "stepper_last": None,  # the Step it took last
        "pending_select": None,  # (dataset, arch, model_id) to apply before the sidebar
        "upload_message": None,  # (level, text) about the last checkpoint upload
        "present": False,  # presenter mode (the sidebar's toggle; ?present=1 in a link)
        "pad_drawings": {},  # drawing pad key -> the drawing it starts from (undo, clear)
        "latent_hit": None,  # index of the test image whose point was clicked on the map
        "own_datasets": {},  # id -> ui.own_images.OwnDataset: a zip of pictures uploaded here
        "own_upload_seen": None,  # file id of the last zip read (each is read once)
        "own_upload_message": None,  # (level, text) about the last zip upload
        "submissions": [],  # this session's challenge submissions (convae.classroom.submission)
    }
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


# ----------------------------------------------------------------------------- data
_failures: dict[tuple[str, bool, str], tuple[float, str]] = {}


@st.cache_resource(show_spinner="Loading the dataset (once per server)...")
def _load_dataset(name: str, train: bool, root: str) -> ImageSet:
    return load_dataset(name, train=train, root=root)


def dataset_labels() -> dict[str, str]:
    """Every dataset this session can choose, id -> label: the server's, then its own."""
    return {**DATASET_LABELS, **own_images.labels()}


def _part(split: ImageSet, index: torch.Tensor) -> ImageSet:
    return dataclasses.replace(split, images=split.images[index], labels=split.labels[index])


@st.cache_resource(show_spinner=False)
def _public_test(name: str, root: str) -> ImageSet:
    full = _load_dataset(name, False, root)
    return _part(full, public_indices(len(full)))


def _split(name: str, train: bool, held_out: bool = False) -> ImageSet:
    root = str(source_root(name))
    key = (name, train, root)
    failed = _failures.get(key)
    if failed and time.monotonic() - failed[0] < FAILURE_TTL_S:
        raise DatasetError(failed[1])
    try:
        if train:
            return _load_dataset(name, True, root)
        if held_out:
            full = _load_dataset(name, False, root)
            return _part(full, held_out_indices(len(full)))
        return _public_test(name, root)
    except DatasetError as e:
        _failures[key] = (time.monotonic(), str(e))
        raise


def get_dataset(name: str, train: bool = False) -> ImageSet:
    """The dataset split, loaded once per server (the test split without the challenges'
    held-out images), or this session's uploaded images; raises DatasetError if it is
    missing."""
    if own_images.is_own(name):
        own = own_images.get(name)
        return own.train if train else own.test
    return _split(name, train)


def uploaded_images(name: str, train: bool) -> torch.Tensor | None:
    """A session's uploaded pictures (the package cannot read them by name), else None."""
    return get_dataset(name, train).images if own_images.is_own(name) else None


def held_out_images(name: str) -> torch.Tensor:
    """(N, C, H, W) uint8: the test images the challenges measure on, never shown."""
    return _split(name, False, held_out=True).images


def dataset_shape(name: str) -> tuple[int, int, int]:
    return catalogue.dataset_shape(name)


def require_dataset(name: str, train: bool = False) -> ImageSet:
    """The dataset, or an explanation on the page and the page stops here."""
    try:
        return get_dataset(name, train)
    except DatasetError as e:
        missing_message(name, e)
        st.stop()


def missing_message(name: str, error: Exception) -> None:
    """Short: what is missing and what to do (the error says which files, and where)."""
    if own_images.is_own(name):
        st.error(f"**{error}** Choose a dataset in the sidebar.", icon=":material/folder_off:")
        return
    label = DATASET_LABELS.get(name, name)
    st.error(
        f"**{label} is not on this server.** Choose another dataset in the sidebar "
        f"(MNIST always works), or ask whoever runs the server: {error}",
        icon=":material/folder_off:",
    )


# ---------------------------------------------------------------------------- models
@dataclass
class SessionModel:
    """A model that belongs to this session: trained here or uploaded."""

    model: Autoencoder
    meta: dict[str, Any]
    label: str
    arch: str
    dataset: str


def current_model() -> ModelRef:
    """The model chosen in the sidebar (the sidebar makes sure the choice is valid)."""
    dataset = st.session_state["dataset"]
    model_id = st.session_state["model_id"] or f"untrained:{st.session_state['arch']}"
    try:
        return resolve(model_id, dataset)
    except CheckpointError as e:
        st.error(f"The chosen model cannot be used: {e}. Showing the untrained model instead.")
        return resolve(f"untrained:{st.session_state['arch']}", dataset)


def add_session_model(
    model: Autoencoder, meta: dict[str, Any], label: str, dataset: str, select: bool = True
) -> str:
    """Keep ``model`` in this session; optionally make it the current model (next run)."""
    n = st.session_state["next_model_no"]
    st.session_state["next_model_no"] = n + 1
    mid = f"session:{n}"
    st.session_state["session_models"][mid] = SessionModel(
        freeze(model), dict(meta), f"#{n} {label}", model.config.arch, dataset
    )
    if select:
        st.session_state["pending_select"] = (dataset, model.config.arch, mid)
    return mid


def inference():
    """The context for every forward pass the pages make: no autograd bookkeeping (the
    shared models are in eval mode already; see :func:`ui.catalogue.freeze`)."""
    return torch.inference_mode()


# ------------------------------------------------------------------------- trainings
@st.cache_resource
def training_queue() -> TrainingQueue:
    """The server's one training queue (every session shares it). Trainings run in
    child processes; their fork server starts now, not when the first student waits."""
    threading.Thread(target=worker.warm_up, name="convae-warm-up", daemon=True).start()
    return queue_from_env()


def _session_is_open() -> Callable[[], bool]:
    """A check, callable from any thread, that this browser tab is still connected."""
    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return lambda: True  # AppTest, bare mode: no websocket to watch
    session_id, rt = ctx.session_id, runtime.get_instance()
    return lambda: rt.is_active_session(session_id)


def submit_training(job: TrainingJob) -> Place:
    """Queue ``job`` as this session's training (raises QueueFullError or
    AlreadyQueuedError with a message for the page)."""
    place = training_queue().submit(st.session_state["sid"], job, alive=_session_is_open())
    st.session_state["job"] = job
    st.session_state["job_adopted"] = False
    return place


def training_place() -> Place | None:
    """This session's training in the queue (None: none waiting or running). A job that
    was dropped from the queue before it started (the tab was closed too long) is
    forgotten, so that Start can be pressed again."""
    place = training_queue().place(st.session_state["sid"])
    job: TrainingJob | None = st.session_state["job"]
    if place is None and job is not None and not job.started:
        st.session_state["job"] = None
    return place
