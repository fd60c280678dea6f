"""Train: fit a model in the browser, watch it learn, keep it."""

import copy
import math

import streamlit as st

from convae import ARCHITECTURES, ConvaeError, TrainConfig
from convae.classroom.fitting import initial_model
from convae.classroom.jobs import TrainingJob
from convae.classroom.queue import Place
from convae.classroom.store import safe_name, save_user_model
from convae.data.noise import NOISE_KINDS
from convae.figures import loss_figure
from convae.nn.checkpoint import to_bytes
from convae.nn.config import LOSSES
from convae.nn.trainer import with_architecture_defaults
from convae.nn.zoo import checkpoint_dir
from ui import challenge as challenge_ui
from ui import layout, nav, state, stepping, widgets
from ui.errors import guarded
from ui.links import URL

# Trainings take the CPU the pages leave: at nice 10 a training still took a third of a
# core from a saturated class (top, 80 students on two replicas).
TRAINING_NICE = 19
TEST_IMAGES = 1000  # test loss after each epoch, and the final PSNR/SSIM
SAMPLES = 8
SIZES = [300, 1000, 3000, 10000, 30000, 60000]
RATES = [None, 1e-4, 3e-4, 1e-3, 2e-3, 5e-3, 1e-2]  # None: the architecture's own

st.title(nav.title(__file__, "Train your own autoencoder"))
layout.explain(
    "Pick a design and a budget, press Start, and watch the loss fall and the "
    "reconstructions sharpen. A few thousand images train in seconds; the model is "
    "yours for this session, and you can save or download it."
)

state.training_place()  # forgets a queued job that was dropped while the tab was closed
job: TrainingJob | None = st.session_state["job"]
running = job is not None and not job.snapshot().finished

# ------------------------------------------------------------------ settings
left, mid, right = st.columns(3)
with left:
    arch = st.selectbox(
        "Architecture",
        list(ARCHITECTURES),
        disabled=running,
        index=list(ARCHITECTURES).index(st.session_state["arch"]),
        key="train_arch",
        bind=URL,
        help="\n".join(f"- **{a.name}**: {a.summary}" for a in ARCHITECTURES.values()),
    )
    labels = state.dataset_labels()
    dataset = st.selectbox(
        "Dataset",
        list(labels),
        disabled=running,
        index=list(labels).index(st.session_state["dataset"]),
        key="train_dataset",
        format_func=labels.get,
        bind=URL,
    )
    limit = st.select_slider(
        "Images to use",
        SIZES,
        3000,
        disabled=running,
        key="train_limit",
        bind=URL,
        format_func=lambda v: f"{v:,}",
        help="The first N training images. Fewer = faster; 3,000 is "
        "enough for recognisable digits.",
    )
with mid:
    epochs = st.slider(
        "Epochs (passes over the images)", 1, 20, 3, disabled=running, key="train_epochs", bind=URL
    )
    batch = st.select_slider(
        "Batch size",
        [16, 32, 64, 128, 256],
        64,
        disabled=running,
        key="train_batch",
        bind=URL,
        help="Images per optimizer step.",
    )
    lr = st.select_slider(
        "Learning rate (Adam)",
        RATES,
        None,
        disabled=running,
        key="train_lr",
        format_func=lambda v: "the model's own" if v is None else f"{v:g}",
        bind=URL,
    )
with right:
    loss = st.radio(
        "Loss",
        LOSSES,
        horizontal=True,
        disabled=running,
        key="train_loss",
        bind=URL,
        format_func=lambda v: {"mse": "MSE", "bce": "binary cross-entropy"}[v],
        help="MSE: mean squared pixel error. BCE treats pixels as probabilities.",
    )
    kinds = ["none", *NOISE_KINDS]
    noise_kind = st.selectbox(
        "Training noise (makes a denoiser)",
        kinds,
        disabled=running,
        key="train_noise_kind",
        format_func=widgets.NOISE_LABELS.get,
        bind=URL,
        help="The model sees noisy images and must output the clean ones.",
    )
    noise_level = st.slider(
        "Training noise level",
        0.05,
        1.0,
        0.3,
        0.05,
        key="train_noise_level",
        bind=URL,
        disabled=running or noise_kind == "none",
    )
    blind = st.checkbox(
        "Every level up to this one (a blind denoiser)",
        value=False,
        disabled=running or noise_kind == "none",
        key="train_noise_blind",
        bind=URL,
        help="Each training image gets its own level, drawn from 0 to the slider's: one "
        "model for clean and noisy input alike, which must judge the noise itself "
        "(as the shipped **denoiser-blind**).",
    )
    current = state.current_model()
    can_continue = (
        current.trained and current.arch == arch and st.session_state["dataset"] == dataset
    )
    warm = st.checkbox(
        "Start from the current model's weights",
        value=False,
        disabled=running or not can_continue,
        key="train_warm",
        help="Fine-tune a copy of the sidebar's model (same architecture and "
        "dataset only). The original is never changed.",
    )

cfg = TrainConfig(
    epochs=epochs,
    batch_size=batch,
    lr=lr,
    loss=loss,
    noise="none"
    if noise_kind == "none"
    else f"{noise_kind}:{'0-' if blind else ''}{noise_level:g}",
    limit=limit,
)
n_steps = math.ceil(limit / batch) * epochs
st.caption(
    f"{limit:,} images x {epochs} epoch(s) = {n_steps:,} optimizer steps of {batch} "
    f"images at a learning rate of {with_architecture_defaults(cfg, arch).lr:g}. "
    f"Test loss after each epoch on {TEST_IMAGES:,} test images."
)


def start() -> None:
    train_set = state.require_dataset(dataset, train=True)
    test_set = state.require_dataset(dataset, train=False)
    if warm and can_continue:
        model = copy.deepcopy(current.model)  # the job copies again; shared models stay put
    else:
        model = initial_model(arch, train_set, cfg)
    new = TrainingJob(
        model,
        train_set.images,
        cfg,
        test_images=test_set.images[:TEST_IMAGES],
        sample_images=test_set.floats(slice(0, SAMPLES)),
        eval_images=test_set.images[:TEST_IMAGES],
        meta={"dataset": dataset, "warm_start": current.label if warm else None},
        nice=TRAINING_NICE,
        isolate=True,  # its own process: it never holds the pages' interpreter lock
    )
    try:
        state.submit_training(new)
    except ConvaeError as e:  # the queue is full, or this session has one already
        st.warning(f"{str(e)[0].upper()}{str(e)[1:]}.", icon=":material/hourglass_top:")
        return
    st.rerun()


if st.button(
    "Start training",
    icon=":material/play_arrow:",
    type="primary",
    disabled=running,
    key="train_start",
    width="content",
):
    guarded(start)()


def fmt_time(s: float) -> str:
    if not math.isfinite(s):
        return "..."
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def queue_status(place: Place | None) -> None:
    """Where this session's training stands in the queue, and the server's load."""
    running_now, waiting_now = state.training_queue().counts()
    limit_now = state.training_queue().max_running
    if place is not None and not place.running:
        c_text, c_cancel = st.columns([6, 1], vertical_alignment="center")
        c_text.info(
            f"**Waiting for a free trainer**: place {place.position} of {place.waiting}, "
            f"starts in about {fmt_time(place.start_in_s)}. Keep this page open; the other "
            "pages work meanwhile.",
            icon=":material/hourglass_top:",
        )
        if c_cancel.button("Cancel", icon=":material/close:", key="train_cancel"):
            state.training_queue().cancel(st.session_state["sid"])
            st.session_state["job"] = None
            st.rerun()
    st.caption(
        f"This server trains {limit_now} model(s) at a time: {running_now} running, "
        f"{waiting_now} waiting."
    )


@st.fragment(run_every=1.0 if running else None)  # a poll a second: enough to watch
@guarded
def progress_view():
    place = state.training_place()
    queue_status(place)
    job: TrainingJob | None = st.session_state["job"]
    if job is None:
        st.info(
            "No training yet in this session. Choose settings and press **Start**.",
            icon=":material/touch_app:",
        )
        return
    if not job.started:
        return
    snap = job.snapshot()
    if snap.finished and not st.session_state["job_adopted"]:
        st.rerun()  # the whole app: the sidebar takes the new model, polling stops
    if not snap.finished:
        c_bar, c_stop = st.columns([6, 1], vertical_alignment="bottom")
        if c_stop.button(
            "Stop",
            icon=":material/stop:",
            key="train_stop",
            width="stretch",
            help="Ends after the current step; the model so far is kept.",
        ):
            job.stop()
        text = (
            f"Epoch {max(snap.epoch, 1)}/{snap.epochs} · step {snap.step}/"
            f"{snap.steps_per_epoch} · {snap.images_per_s:,.0f} images/s · "
            f"{fmt_time(snap.elapsed_s)} elapsed · about {fmt_time(snap.eta_s)} left"
        )
        if snap.fraction >= 1:
            text = (
                f"All {snap.epochs} epoch(s) done in {fmt_time(snap.elapsed_s)}; measuring "
                f"the model on {TEST_IMAGES:,} test images..."
            )
        c_bar.progress(snap.fraction, text=text)
    elif snap.state == "failed":
        st.error(f"Training failed: {snap.error}")
    else:
        clean = job.meta.get("metrics", {}).get("clean", {})
        verb = "Stopped early" if snap.state == "stopped" else "Done"
        st.success(
            f"**{verb}** after {fmt_time(job.meta.get('history', {}).get('seconds', 0))}"
            + (
                f": test PSNR {clean['psnr']:.1f} dB, SSIM {clean['ssim']:.3f} on "
                f"{clean['n']:,} test images"
                if clean
                else ""
            )
            + ". It is now the current model (see the sidebar) on every page.",
            icon=":material/check_circle:",
        )
    c_chart, c_samples = st.columns([1.3, 1])
    with c_chart:
        st.plotly_chart(
            loss_figure(
                snap.curve, snap.train_losses, snap.test_losses, job.cfg.loss.upper(), snap.epochs
            ),
            key="train_loss_chart",
        )
        st.caption(
            "Faint line: each batch's loss. The epoch mean averages a whole epoch "
            "while the model was still improving; the test loss is measured at the "
            "epoch's end on unseen images, so it can sit below the training line."
        )
    with c_samples:
        if snap.samples_in is not None and snap.samples_out is not None:
            st.markdown("**Test images** (never trained on)")
            widgets.picture(
                snap.samples_in,
                nrow=SAMPLES // 2,
                scale=3,
                caption="input"
                + ("" if job.cfg.noise.is_clean else f" with {job.cfg.noise} noise"),
            )
            widgets.picture(
                snap.samples_out,
                nrow=SAMPLES // 2,
                scale=3,
                caption="reconstruction "
                + (
                    f"after epoch {snap.samples_epoch}" if snap.samples_epoch else "before training"
                ),
            )


progress_view()

stepping.render(arch, dataset, cfg)

# ------------------------------------------------------------------ keep the result
job = st.session_state["job"]
if job is not None and job.snapshot().state in ("done", "stopped"):
    st.subheader(":material/save: Keep this model")
    default = f"{job.meta.get('dataset', 'model')}-{job.model.config.arch}-mine"
    c_name, c_over, c_save, c_dl = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
    name = c_name.text_input(
        "Name",
        default,
        key="train_save_name",
        max_chars=60,
        help="Letters, digits, - and _; saved as NAME.pt in the checkpoint folder.",
    )
    overwrite = c_over.checkbox("Replace if it exists", key="train_overwrite")
    try:
        file_name = f"{safe_name(name)}.pt"
    except ConvaeError:
        file_name = "convae-model.pt"
    if c_save.button("Save on the server", key="train_save", width="stretch"):
        try:
            path = save_user_model(checkpoint_dir(), name, job.model, job.meta, overwrite)
            st.success(
                f"Saved as `{path}`. It is listed in the sidebar for everyone using this server."
            )
        except ConvaeError as e:
            st.error(str(e))
        except OSError as e:
            st.error(
                f"Could not write to {checkpoint_dir()}: {e.strerror or e}. Download "
                "the model instead."
            )
    c_dl.download_button(
        "Download",
        lambda: to_bytes(job.model, job.meta),
        icon=":material/download:",
        file_name=file_name,
        mime="application/octet-stream",
        key="train_download",
        width="stretch",
        on_click="ignore",
    )

    with st.expander("Submit it to a class challenge", icon=":material/leaderboard:"):
        challenge_ui.submit_form(job.model, job.meta, job.meta.get("dataset"), key="train_submit")

        @st.fragment(run_every=1.0 if challenge_ui.pending() else None)
        def submissions_view() -> None:
            challenge_ui.my_submissions()

        submissions_view()
