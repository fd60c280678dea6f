"""Your own images: a zipped image folder, uploaded in the sidebar, becomes a dataset for
this session only (:mod:`convae.data.zip_folder` reads it safely, in memory).

Such a dataset is named ``upload:<hash of the zip>``: the same zip is the same dataset
whoever uploads it, so caches keyed by its name are right across sessions, while its
images live in the uploading session's state alone. Shipped models do not apply to it
(none was trained on it); untrained models and models trained here do. A link cannot
carry it, as it cannot carry a session's own model.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import streamlit as st

from convae import DatasetError, ImageSet
from convae.data.zip_folder import ZipLimits, load_zip

PREFIX = "upload:"
LIMITS = ZipLimits()
log = logging.getLogger("convae.app")


@dataclass(frozen=True)
class OwnDataset:
    """An uploaded image folder: both splits in memory, and what the sidebar calls it."""

    id: str
    label: str
    train: ImageSet
    test: ImageSet


def is_own(name: str) -> bool:
    return name.startswith(PREFIX)


def get(name: str) -> OwnDataset:
    """This session's uploaded dataset ``name`` (DatasetError once it is gone)."""
    own: OwnDataset | None = st.session_state["own_datasets"].get(name)
    if own is None:
        raise DatasetError("your uploaded images are no longer in this session; upload them again")
    return own


def code_name(name: str) -> str:
    """How code run elsewhere names the dataset: uploaded pictures, once unzipped into a
    folder ``my_pictures``, are ``folder:my_pictures``."""
    return "folder:my_pictures" if is_own(name) else name


def labels() -> dict[str, str]:
    """This session's uploaded datasets, id -> label."""
    return {k: d.label for k, d in st.session_state["own_datasets"].items()}


def read_zip(name: str, data: bytes, on_progress=None) -> OwnDataset:
    """The zip ``data`` (a file called ``name``) as a dataset; DatasetError if refused."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    dataset_id = f"{PREFIX}{digest}"
    classes, splits = load_zip(data, name, limits=LIMITS, on_progress=on_progress)
    sets = {
        split: ImageSet(dataset_id, split == "train", images, labels, classes, f"uploaded {name}")
        for split, (images, labels) in splits.items()
    }
    shape = "x".join(map(str, sets["train"].shape))
    label = (
        f"Your images: {name[:40]} ({len(classes)} classes, "
        f"{len(sets['train']) + len(sets['test']):,} images, {shape})"
    )
    return OwnDataset(dataset_id, label, sets["train"], sets["test"])


def uploader() -> None:
    """The sidebar's zip uploader. A new zip is read here, with a progress bar; once
    taken it becomes the session's dataset (one at a time: a new zip replaces it) and
    the sidebar switches to it on the next run."""
    st.file_uploader(
        "A zip of train/<class>/ and test/<class>/ folders of pictures",
        type=["zip"],
        key="own_upload",
        max_upload_size=LIMITS.zip_bytes // 1_000_000,
        help=f"Up to {LIMITS.zip_bytes // 1_000_000} MB and {LIMITS.images:,} pictures "
        "(PNG, JPEG, GIF, BMP, WEBP, TIFF). Colour pictures become 3x32x32, grey ones "
        "1x28x28. For this session only: train a model on them on the Train page.",
    )
    uploaded = st.session_state.get("own_upload")
    if uploaded is not None and uploaded.file_id != st.session_state["own_upload_seen"]:
        st.session_state["own_upload_seen"] = uploaded.file_id
        bar = st.progress(0.0, text=f"Reading {uploaded.name}...")

        def on_progress(done: int, total: int) -> None:
            if done == total or done % 50 == 0:
                bar.progress(done / total, text=f"Reading {uploaded.name}: {done}/{total}")

        try:
            own = read_zip(uploaded.name, uploaded.getvalue(), on_progress)
        except DatasetError as e:
            st.session_state["own_upload_message"] = ("error", f"Not taken: {e}")
        except Exception as e:  # a file nobody foresaw: a message, never a traceback
            log.exception("unexpected error reading an uploaded zip", exc_info=e)
            st.session_state["own_upload_message"] = (
                "error",
                f"Not taken: {uploaded.name} could not be read as a zip of pictures "
                f"({type(e).__name__})",
            )
        else:
            st.session_state["own_datasets"] = {own.id: own}  # replaces an earlier one
            st.session_state["own_upload_message"] = (
                "success",
                f"Taken: {own.label.removeprefix('Your images: ')}, classes "
                f"{', '.join(own.train.classes)[:200]}. It is the dataset now; a link "
                "cannot carry it.",
            )
            st.session_state["pending_select"] = (own.id, st.session_state["arch"], None)
        bar.empty()
        st.rerun()
    msg = st.session_state["own_upload_message"]
    if msg:
        (st.error if msg[0] == "error" else st.success)(msg[1])
