"""The sidebar on every page: dataset, architecture and model, plus a model card."""

from __future__ import annotations

import logging

import streamlit as st

from convae import ARCHITECTURES, ConvaeError, load_checkpoint
from convae.classroom.jobs import TrainingJob
from convae.nn.layers import compression

from . import catalogue, layout, links, own_images, room, state
from .errors import guarded
from .state import DATASET_LABELS

log = logging.getLogger("convae.app")


def _apply_pending() -> None:
    """Selections asked for by a page (e.g. "use the model just trained")."""
    pending = st.session_state["pending_select"]
    if pending:
        dataset, arch, model_id = pending
        st.session_state["dataset"] = dataset
        st.session_state["arch"] = arch
        st.session_state["model_id"] = model_id
        st.session_state["pending_select"] = None


def adopt_finished_job() -> None:
    """A finished training becomes this session's current model, once."""
    job: TrainingJob | None = st.session_state["job"]
    if job is None or st.session_state["job_adopted"]:
        return
    snap = job.snapshot()
    if not snap.finished:
        return
    st.session_state["job_adopted"] = True
    if snap.state == "failed":
        return
    meta = job.meta
    epochs = len(meta.get("history", {}).get("epochs", []))
    noise = meta.get("train_noise", "none")
    label = (
        f"{job.cfg.epochs if snap.state == 'done' else epochs} epoch(s) on "
        f"{job.n_train:,} images"
        + ("" if noise == "none" else f", {noise} noise")
        + (" (stopped early)" if snap.state == "stopped" else "")
    )
    state.add_session_model(job.model, meta, label, meta.get("dataset", ""))
    st.toast(
        "Training finished: your model is now the current model.", icon=":material/check_circle:"
    )


def _on_upload() -> None:
    """Validate an uploaded checkpoint; a bad file changes nothing but the message."""
    uploaded = st.session_state.get("ckpt_upload")
    if uploaded is None:
        return
    dataset = st.session_state["dataset"]
    try:
        ckpt = load_checkpoint(uploaded.getvalue(), expect_shape=state.dataset_shape(dataset))
    except ConvaeError as e:
        st.session_state["upload_message"] = ("error", f"{uploaded.name} was not loaded: {e}")
        return
    except Exception as e:  # a file nobody foresaw: a message, never a crashed callback
        log.exception("unexpected error loading an uploaded checkpoint", exc_info=e)
        st.session_state["upload_message"] = (
            "error",
            f"{uploaded.name} was not loaded: it could not be read as a convae "
            f"checkpoint ({type(e).__name__})",
        )
        return
    name = uploaded.name
    mid = state.add_session_model(ckpt.model, ckpt.meta, f"uploaded {name}", dataset, select=False)
    st.session_state["arch"] = ckpt.config.arch
    st.session_state["model_id"] = mid
    st.session_state["upload_message"] = (
        "success",
        f"{name} loaded: a {ckpt.config.arch} model, now the current model.",
    )


def _model_card(ref: catalogue.ModelRef) -> None:
    c = compression(ref.model)
    lines = [
        f"**{ref.arch}** · {ref.model.num_params:,} parameters",
        f"code: {c.code_size} values = {c.ratio_text} of the {c.input_size}-value input",
    ]
    meta = ref.meta
    if ref.kind == "untrained":
        lines.append("random weights: nothing learned yet")
    else:
        hist = meta.get("history", {}).get("epochs", [])
        train = meta.get("train", {})
        bits = []
        if hist:
            bits.append(f"{len(hist)} epoch(s)")
        if meta.get("train_images") or train.get("limit"):
            bits.append(f"{meta.get('train_images') or train.get('limit'):,} images")
        if meta.get("train_noise", "none") != "none":
            bits.append(f"denoising ({meta['train_noise']})")
        if bits:
            lines.append("trained: " + ", ".join(bits))
        clean = meta.get("metrics", {}).get("clean")
        if clean:
            n = clean.get("n", meta.get("test_images"))
            lines.append(
                f"test: PSNR {clean['psnr']:.1f} dB, SSIM {clean['ssim']:.3f}"
                + (f" ({n:,} images)" if isinstance(n, int) else "")
            )
    st.caption("  \n".join(lines))


def apply_link() -> list[str]:
    """A session opened from a link starts on the link's dataset, model and mode;
    returns the names of the parameters that could not be used."""
    files = {e.file.removesuffix(".pt"): (e.dataset, e.arch) for e in catalogue.file_entries()}
    values, unused = links.read_sidebar(DATASET_LABELS, ARCHITECTURES, files)
    st.session_state.update(values)
    return unused


@st.dialog("Share this view", width="medium")
def _share() -> None:
    """The link to this view, and a QR code of it big enough to scan from a projection.

    A dialog opened by a button, not a popover: the button's run brings the browser's
    current address, so the link is right even after fragment-only changes."""
    reach = room.reach_here(links.share_url())
    url = reach.urls[0]
    if len(reach.urls) > 1:  # several networks: the teacher knows which is the room's
        url = st.radio("This computer's address for the room", reach.urls, key="share_address")
    if reach.note:
        (st.warning if reach.warning else st.caption)(reach.note)
    st.caption(
        "Anyone who opens this link sees this page with the same settings, images and numbers."
    )
    st.code(url, language=None, wrap_lines=True)
    qr = links.qr_png(url)
    if qr is None:
        st.caption("This link is too long for a QR code.")
    else:
        st.image(qr, width=360)
    if own_images.is_own(st.session_state["dataset"]):
        st.warning(
            "Your uploaded pictures cannot travel in a link: the link opens the default "
            "dataset (MNIST) instead.",
            icon=":material/info:",
        )
    elif links.model_param(st.session_state["model_id"] or "") is None:
        st.warning(
            "Your own model (trained or uploaded in this session) cannot travel in a "
            "link: the link opens the pretrained model for the same dataset and "
            "architecture.",
            icon=":material/info:",
        )


def render() -> catalogue.ModelRef | None:
    """Draw the sidebar; returns the current model (None if the dataset is unknown)."""
    adopt_finished_job()
    _apply_pending()
    with st.sidebar:
        labels = state.dataset_labels()
        if st.session_state["dataset"] not in labels:  # uploaded images replaced or gone
            st.session_state["dataset"] = state.DEFAULT_DATASET
        st.selectbox(
            "Dataset",
            list(labels),
            key="dataset",
            format_func=lambda d: labels.get(d, d),
            help="Images the model works on. CIFAR-10 needs its files on the server; "
            "your own pictures can be uploaded below (a zip).",
        )
        st.selectbox(
            "Architecture",
            list(ARCHITECTURES),
            key="arch",
            help="How the encoder and decoder are built; see the Home page's layer table.",
        )
        choices = catalogue.model_choices(st.session_state["dataset"], st.session_state["arch"])
        if st.session_state["model_id"] not in choices:
            st.session_state["model_id"] = next(iter(choices))
        st.selectbox(
            "Model (weights)",
            list(choices),
            key="model_id",
            format_func=lambda i: choices[i].label if i in choices else i,
            help="Pretrained checkpoints, your own models from this session, or random weights.",
        )
        ref = state.current_model()
        links.write_sidebar(
            None if own_images.is_own(st.session_state["dataset"]) else st.session_state["dataset"],
            st.session_state["arch"],
            st.session_state["model_id"],
            layout.presenting(),
        )
        if own_images.is_own(st.session_state["dataset"]):
            st.info(
                "Your own pictures: no pretrained model knows them. Train one on the "
                "**Train** page, or look at the untrained one.",
                icon=":material/info:",
            )
        elif not any(k.startswith("file:") for k in choices):
            st.info(
                f"No pretrained {st.session_state['arch']} model for this dataset yet: "
                "train one on the **Train** page, or look at the untrained one.",
                icon=":material/info:",
            )
        _model_card(ref)
        st.toggle(
            "Presenter mode",
            key="present",
            help="For the projector: larger type and pictures, explanations folded "
            "away. A shared link keeps this mode.",
        )
        if st.button(
            "Share this view",
            icon=":material/qr_code_2:",
            key="share",
            width="stretch",
            help="A link and a QR code that open exactly this view.",
        ):
            _share()
        with st.expander("Upload a checkpoint (.pt)"):
            st.file_uploader(
                "A convae checkpoint",
                type=["pt", "pth"],
                key="ckpt_upload",
                on_change=_on_upload,
                label_visibility="collapsed",
                help="Saved by the Train page or `python -m convae train`.",
            )
            msg = st.session_state["upload_message"]
            if msg:
                (st.error if msg[0] == "error" else st.success)(msg[1])
        with st.expander("Use your own pictures (.zip)"):
            own_images.uploader()
        job: TrainingJob | None = st.session_state["job"]
        if job is not None and not job.snapshot().finished:
            _training_status()
    return ref


@st.fragment(run_every=1.0)
@guarded  # it runs on its own every second: an error must stay a message here too
def _training_status() -> None:
    """Live progress on every page while this session trains; when the training ends,
    one full rerun hands the new model to the sidebar and ends this polling."""
    job: TrainingJob | None = st.session_state["job"]
    if job is None:
        return
    place = state.training_place()  # asking keeps a queued job's place
    if not job.started:
        if place is not None:
            st.caption(f"Waiting for a trainer: place {place.position} of {place.waiting}.")
        return
    snap = job.snapshot()
    job.heartbeat()  # this page is still open: the job is not orphaned
    if snap.finished:
        if not st.session_state["job_adopted"]:
            st.rerun()
        return
    text = (
        "Training done; measuring it on test images..."
        if snap.fraction >= 1
        else f"Training... {snap.fraction:.0%} (epoch {max(snap.epoch, 1)}/{snap.epochs})"
    )
    st.progress(snap.fraction, text=text)
