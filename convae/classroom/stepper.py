"""Training one optimizer step at a time, keeping what each step saw and changed.

For narrating the first steps of learning: a :class:`Stepper` trains its own copy of a
model exactly as :func:`convae.nn.trainer.train` does (same optimizer, loss, noise and
shuffling), but one batch per :meth:`Stepper.step`, and returns that batch, what the
model made of it, the loss, and one filter before and after the update.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from convae.base.tensors import to_unit_float
from convae.measuring.filters import filter_layers
from convae.nn.config import TrainConfig
from convae.nn.fast_path import fast_forward
from convae.nn.models import Autoencoder
from convae.nn.trainer import (
    loss_function,
    make_optimizer,
    optimizer_step,
    steps_per_epoch,
    with_architecture_defaults,
)


@dataclass(frozen=True)
class Step:
    """What one optimizer step did."""

    number: int  # 1 for the first step
    epoch: int  # 1 while the first pass over the images lasts
    inputs: torch.Tensor  # (B, C, H, W) the batch as the model saw it (noisy if training noise)
    targets: torch.Tensor  # (B, C, H, W) what it had to reproduce
    outputs: torch.Tensor  # (B, C, H, W) its reconstructions, on which the loss was measured
    loss: float
    filter_before: torch.Tensor  # (C_in, k, k) the watched filter before the update
    filter_after: torch.Tensor  # (C_in, k, k) and after


def watched_filter(model: Autoencoder, layer: str, index: int) -> torch.Tensor:
    """Filter ``index`` of ``layer`` (one of :func:`convae.measuring.filters.filter_layers`): the
    kernels (C_in, kh, kw) that make its output channel ``index``, a copy.

    Raises:
        ValueError: the model has no such layer, or ``index`` is out of range.
    """
    layers = {f.name: f for f in filter_layers(model)}
    if layer not in layers:
        raise ValueError(f"{layer!r} has no filters to show; choose one of {list(layers)}")
    kernels = layers[layer].kernels
    if not 0 <= index < len(kernels):
        raise ValueError(f"{layer} has filters 0-{len(kernels) - 1}, not {index}")
    return kernels[index]


class Stepper:
    """Train a copy of ``model`` one batch at a time.

    Args:
        model: the starting point; copied, never modified.
        train_images: (N, C, H, W) uint8 or float in [0, 1]; ``cfg.limit`` applies.
        cfg: batch size, learning rate, loss, training noise and seed as for ``train``
            (epochs only count the passes, and give the learning rate's warm-up and
            schedule the run's length; the stepper goes on as long as it is asked).
        layer, index: the filter whose change :meth:`step` reports (default: the first
            filter of the first layer :func:`convae.measuring.filters.filter_layers` lists).
        meta: metadata for the kept model's checkpoint (e.g. ``dataset``).
    """

    def __init__(
        self,
        model: Autoencoder,
        train_images: torch.Tensor,
        cfg: TrainConfig,
        layer: str | None = None,
        index: int = 0,
        meta: dict[str, Any] | None = None,
    ):
        images = train_images if cfg.limit is None else train_images[: cfg.limit]
        if len(images) == 0:
            raise ValueError("the stepper needs at least one training image")
        self.cfg = with_architecture_defaults(cfg, model.config.arch)
        self.meta = dict(meta or {})  # for the checkpoint of the model, if it is kept
        self.model = copy.deepcopy(model).cpu().train()
        for p in self.model.parameters():  # a shared, frozen model has them switched off
            p.requires_grad_(True)
        self._data = images
        self.steps_per_epoch = steps_per_epoch(len(images), cfg.batch_size)
        # the learning rate of train() for these settings: its warm-up, then its schedule
        # over cfg.epochs passes
        run_steps = self.steps_per_epoch * cfg.epochs
        self._optimizer = make_optimizer(self.model, self.cfg, torch.device("cpu"), run_steps)
        self._loss = loss_function(cfg.loss)
        self._generator = torch.Generator().manual_seed(cfg.seed)
        self._order = torch.randperm(len(images), generator=self._generator)
        self.done = 0
        self.losses: list[float] = []
        layers = filter_layers(self.model)
        self.layer = layer if layer is not None else (layers[0].name if layers else None)
        self.index = index
        if self.layer is not None:
            watched_filter(self.model, self.layer, index)  # checks layer and index now

    def watch(self, layer: str, index: int) -> None:
        """Report filter ``index`` of ``layer`` from the next step on."""
        watched_filter(self.model, layer, index)
        self.layer, self.index = layer, index

    def _filter(self) -> torch.Tensor:
        if self.layer is None:
            return torch.zeros(0, 0, 0)
        return watched_filter(self.model, self.layer, self.index)

    def step(self) -> Step:
        """One optimizer step on the next batch (a new shuffle after each pass)."""
        within = self.done % self.steps_per_epoch
        if within == 0 and self.done:
            self._order = torch.randperm(len(self._data), generator=self._generator)
        batch = self._order[within * self.cfg.batch_size : (within + 1) * self.cfg.batch_size]
        target = to_unit_float(self._data[batch])
        noise = self.cfg.noise
        x = target if noise.is_clean else noise.apply(target, generator=self._generator)
        before = self._filter()
        self.model.train()
        forward = fast_forward(self.model) if self.cfg.fast_path else None  # as train() does
        out, loss = optimizer_step(
            self.model, self._optimizer, x, target, self._loss, forward=forward
        )
        self.model.eval()
        self.done += 1
        value = float(loss.item())
        self.losses.append(value)
        return Step(
            number=self.done,
            epoch=(self.done - 1) // self.steps_per_epoch + 1,
            inputs=x,
            targets=target,
            outputs=out.detach().float().clamp(0, 1),
            loss=value,
            filter_before=before,
            filter_after=self._filter(),
        )

    def trained_model(self) -> Autoencoder:
        """A frozen copy of the model as it is now (eval mode), to keep or explore."""
        model = copy.deepcopy(self.model).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model


FRAME = 0.25  # grey level of the frame around each kernel


def filter_change_images(
    before: torch.Tensor, after: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A filter before and after a step, and the change, as grey images in [0, 1].

    Before and after share one symmetric scale (mid-grey = 0, white = the largest
    weight's magnitude) so that they can be compared; the change has its own scale, as
    it is usually a hundred times smaller.

    Args:
        before, after: (C_in, k, k) kernels.

    Returns:
        three (C_in, 1, k + 2, k + 2) batches: before, after, change, each kernel in a
        dark frame one pixel wide (white weights would vanish on a white page).
    """
    if before.shape != after.shape:
        raise ValueError(f"the filters differ in shape: {before.shape} and {after.shape}")

    def grey(w: torch.Tensor, top: float) -> torch.Tensor:
        tiles = (0.5 + 0.5 * w / max(top, 1e-12)).clamp(0, 1).unsqueeze(1)
        return torch.nn.functional.pad(tiles, (1, 1, 1, 1), value=FRAME)

    top = float(torch.cat([before.abs().flatten(), after.abs().flatten()]).max(0).values)
    change = after - before
    return grey(before, top), grey(after, top), grey(change, float(change.abs().max()))
