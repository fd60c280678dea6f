"""From settings to a trained, measured model and the description its checkpoint keeps.

The one way convae trains a model, shared by ``python -m convae train``, the app's
:class:`convae.classroom.jobs.TrainingJob` and ``scripts/train_checkpoints.py``:

1. :func:`initial_model` builds the architecture with its output starting at the
   training images' mean brightness and every ReLU unit active on half of them (which
   keeps small ReLU models from dying, or from losing code channels);
2. :func:`fit` trains it (:func:`convae.nn.trainer.train`), measures it on clean input
   and at the training noise (:func:`convae.measuring.metrics.evaluate`, the measurement behind
   ``python -m convae eval``), and assembles the checkpoint's ``meta``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from convae.data.datasets import ImageSet
from convae.data.noise import Noise
from convae.measuring.metrics import evaluate
from convae.nn.config import ModelConfig, TrainConfig
from convae.nn.models import Autoencoder, build_model
from convae.nn.trainer import EpochStats, History, Progress, train, with_architecture_defaults

INIT_IMAGES = 256  # training images that set the ReLU units' starting biases


def initial_model(arch: str, train_set: ImageSet, cfg: TrainConfig) -> Autoencoder:
    """A new ``arch`` model for ``train_set``'s images, ready to be trained with ``cfg``.

    Its weights follow from ``cfg.seed`` alone; its output starts at the mean pixel value
    of the images it will train on (the first ``cfg.limit``), and every ReLU unit starts
    alive on the first :data:`INIT_IMAGES` of them
    (:meth:`convae.nn.models.Autoencoder.init_relu_biases`).
    """
    images = train_set.subset(limit=cfg.limit)
    model = build_model(
        ModelConfig(arch, train_set.shape), seed=cfg.seed, output_mean=images.mean_intensity()
    )
    model.init_relu_biases(images.images[:INIT_IMAGES])
    return model


def measured_noises(cfg: TrainConfig, also: Sequence[Noise] = ()) -> list[Noise]:
    """What a trained model is measured at: clean input, then ``also``, then the training
    noise unless it is among them already."""
    noises = [Noise()]
    for noise in (*also, cfg.noise):
        if not noise.is_clean and noise not in noises:
            noises.append(noise)
    return noises


@dataclass
class Fitted:
    """A trained model and what its checkpoint says about it.

    Attributes:
        model: the trained model, in eval mode.
        history: per-epoch losses and timings.
        meta: the checkpoint's description: the caller's fields (e.g. ``dataset``),
            then ``train_noise``, ``train`` (the settings), ``metrics``, ``history``,
            ``train_images`` and ``test_images`` (how many images were measured).
    """

    model: Autoencoder
    history: History
    meta: dict[str, Any]

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """``{"clean": Evaluation as dict, "gaussian:0.5": ...}``, one per noise measured."""
        return self.meta["metrics"]


def fit(
    model: Autoencoder,
    train_images: torch.Tensor,
    cfg: TrainConfig,
    *,
    test_images: torch.Tensor | None = None,
    eval_images: torch.Tensor | None = None,
    also_measure: Sequence[Noise] = (),
    meta: dict[str, Any] | None = None,
    on_step: Callable[[Progress], None] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_measure: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
    device: str | torch.device | None = None,
) -> Fitted:
    """Train ``model`` in place, measure it, and describe it for its checkpoint.

    Args:
        model: e.g. from :func:`initial_model`; trained in place, returned in eval mode.
        train_images: (N, C, H, W) uint8 or float in [0, 1]; ``cfg.limit`` keeps the first N.
        cfg: how to train, including the training noise.
        test_images: for the test loss after every epoch (same loss and noise).
        eval_images: measured once training ends with MSE, PSNR and SSIM, at every noise of
            :func:`measured_noises`; None: no metrics.
        also_measure: noises to measure at besides clean input and the training noise.
        meta: fields that lead the description, e.g. ``{"dataset": "mnist"}``.
        on_step, on_epoch, stop, device: as for :func:`convae.nn.trainer.train`.
        on_measure: called as the measuring goes, with (images measured so far, images to
            measure in all): first with 0 when training is over, then after every batch.
    """
    cfg = with_architecture_defaults(cfg, model.config.arch)  # the description names the rate used
    history = train(
        model,
        train_images,
        cfg,
        test_images=test_images,
        on_step=on_step,
        on_epoch=on_epoch,
        stop=stop,
        device=device,
    )
    metrics: dict[str, dict[str, Any]] = {}
    if eval_images is not None and len(eval_images):
        noises = measured_noises(cfg, also_measure)
        total, done = len(eval_images) * len(noises), 0

        def measured(n: int) -> None:
            nonlocal done
            done += n
            if on_measure is not None:
                on_measure(done, total)

        measured(0)
        for noise in noises:
            key = "clean" if noise.is_clean else str(noise)
            metrics[key] = evaluate(model, eval_images, noise, on_batch=measured).to_dict()
    n_train = len(train_images) if cfg.limit is None else min(cfg.limit, len(train_images))
    description = {
        **(meta or {}),
        "train_noise": str(cfg.noise),
        "train": cfg.to_dict(),
        "metrics": metrics,
        "history": history.to_dict(),
        "train_images": n_train,
        "test_images": 0 if eval_images is None else len(eval_images),
    }
    return Fitted(model, history, description)
