"""The Train page's step-by-step mode: one optimizer step per click, or slow motion.

The stepper (:class:`convae.classroom.stepper.Stepper`) trains in the script thread: one step on one
batch takes milliseconds, so it needs no background job and no queue.
"""

from __future__ import annotations

import streamlit as st

from convae import TrainConfig
from convae.classroom.fitting import initial_model
from convae.classroom.stepper import Step, Stepper, filter_change_images
from convae.figures import loss_figure
from convae.measuring.filters import filter_layers

from . import layout, pictures, state, widgets
from .errors import guarded

SHOWN = 8  # images of the batch shown
SPEEDS = {"1 step a second": 1.0, "2 steps a second": 0.5, "1 step every 2 s": 2.0}


def render(arch: str, dataset: str, cfg: TrainConfig) -> None:
    """The section: controls, then the last step's batch, loss and filter."""
    st.subheader(":material/footprint: Step by step")
    layout.explain(
        "Watch learning one optimizer step at a time: the model sees one batch, "
        "compares what it makes of it with the target, and nudges every weight. "
        "It starts from an untrained model with the settings above."
    )
    c_play, c_speed, c_reset, c_keep = st.columns([1.2, 1.6, 1, 1.3], vertical_alignment="bottom")
    playing = c_play.toggle("Slow motion", key="step_play", help="Steps on by itself.")
    speed = c_speed.selectbox("Speed", list(SPEEDS), key="step_speed", disabled=not playing)
    if c_reset.button("Start over", icon=":material/restart_alt:", key="step_reset"):
        st.session_state["stepper"] = st.session_state["stepper_last"] = None
    held: Stepper | None = st.session_state["stepper"]
    if c_keep.button(
        "Keep this model",
        icon=":material/bookmark_add:",
        key="step_keep",
        disabled=held is None,
        help="Add the model as it is now to your models (the sidebar).",
    ):
        assert held is not None
        dataset_of = held.meta["dataset"]
        state.add_session_model(
            held.trained_model(), held.meta, f"{held.done} step(s) by hand", dataset_of
        )
        st.rerun()
    _stepping(arch, dataset, cfg, SPEEDS[speed] if playing else None)


def _stepping(arch: str, dataset: str, cfg: TrainConfig, every: float | None) -> None:
    """A fragment: a step (a click, or the slow-motion timer) reruns only this part."""

    @st.fragment(run_every=every)
    @guarded
    def steps() -> None:
        stepped = st.button(
            "Step", icon=":material/skip_next:", key="step_one", type="primary", width="content"
        )
        stepper: Stepper | None = st.session_state["stepper"]
        if stepper is None and (stepped or every is not None):
            train_set = state.require_dataset(dataset, train=True)
            model = initial_model(arch, train_set, cfg)
            meta = {"dataset": dataset, "train_noise": str(cfg.noise), "train": cfg.to_dict()}
            stepper = Stepper(model, train_set.images, cfg, meta=meta)
            st.session_state["stepper"] = stepper
        if stepper is None:
            st.info("Press **Step** for the first optimizer step.", icon=":material/touch_app:")
            return
        layers = {f.name: len(f.kernels) for f in filter_layers(stepper.model)}
        if layers:
            c_layer, c_index, _ = st.columns([1.5, 1, 3])
            layer = c_layer.selectbox("Watch a filter of layer", list(layers), key="step_layer")
            count = layers[layer]
            index = c_index.number_input(
                f"Filter (0-{count - 1})", 0, count - 1, 0, key="step_filter"
            )
            stepper.watch(layer, int(index))
        if stepped or every is not None:
            st.session_state["stepper_last"] = stepper.step()
        last: Step | None = st.session_state["stepper_last"]
        st.caption(
            f"{stepper.meta['dataset']}, batches of {stepper.cfg.batch_size}, learning rate "
            f"{stepper.cfg.lr:g}, {stepper.cfg.loss.upper()} loss"
            + ("" if stepper.cfg.noise.is_clean else f", {stepper.cfg.noise} training noise")
            + f"; {stepper.steps_per_epoch} steps make one pass over the images."
        )
        if last is not None:
            _show(stepper, last)

    steps()


def _show(stepper: Stepper, last: Step) -> None:
    losses = stepper.losses
    delta = losses[-1] - losses[-2] if len(losses) > 1 else None
    c_metric, c_chart = st.columns([1, 2.2])
    c_metric.metric(
        f"Step {last.number} (pass {last.epoch}): loss",
        f"{last.loss:.4f}",
        None if delta is None else f"{delta:+.4f} vs the step before",
        delta_color="inverse",
    )
    curve = [(i + 1, v) for i, v in enumerate(losses)]
    c_chart.plotly_chart(
        loss_figure(curve, (), (), stepper.cfg.loss.upper(), x_title="step"),
        key="step_loss_chart",
    )
    widgets.image_row("This batch", last.inputs[:SHOWN], "what the model saw")
    widgets.image_row("Its output", last.outputs[:SHOWN], "what the loss was measured on")
    if not last.filter_after.numel():
        return
    before, after, change = filter_change_images(last.filter_before, last.filter_after)
    largest = float((last.filter_after - last.filter_before).abs().max())
    st.markdown(f"**How filter {stepper.index} of `{stepper.layer}` changed** in this step")
    scale = max(8, 96 // last.filter_after.shape[-1])
    nrow = min(8, len(before))
    for column, images, caption in zip(
        st.columns(3),
        (before, after, change),
        ("before", "after", f"the change (its own scale: largest {largest:.2g})"),
        strict=True,
    ):
        pictures.picture(images, caption, scale=scale, nrow=nrow, where=column)
    st.caption(
        "Mid-grey is 0, white positive, black negative; one tile per input channel, "
        "framed in dark grey."
    )
