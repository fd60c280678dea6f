"""A fast trainer: batches sliced from in-memory tensors, Adam, MSE or BCE.

Why it is fast on a CPU (measured in ``benchmarks/benchmark_trainer.py``): the whole
dataset stays in memory and each batch is one index into it, turned into floats as it is
taken (no DataLoader, no per-sample Python or PIL work); batches are larger than the tutorials' 20;
the forward pass runs through :func:`convae.nn.fast_path.fast_forward` (the same arithmetic
in better-shaped operations); convolutions run in channels-last memory layout; freed
memory is kept for the next step (:mod:`convae.nn.allocator`); Adam updates all parameters
in one fused kernel; and on CPUs with native bfloat16 (AVX-512-BF16 or AMX) the forward
pass runs under bfloat16 autocast. The weights themselves always stay float32.

Training can be stopped from another thread through a ``threading.Event``; it stops
between two optimizer steps, so the model is always a consistent, usable state.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from convae.base.tensors import eval_mode, to_unit_float
from convae.data.noise import Noise
from convae.nn.adam import Adam
from convae.nn.allocator import keep_freed_memory
from convae.nn.config import TrainConfig
from convae.nn.fast_path import MEASURING_BATCH, fast_forward
from convae.nn.models import ARCHITECTURES, Autoencoder


def resolve_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else the best available of cuda, mps and cpu."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Progress:
    """Reported after every optimizer step."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based within the epoch
    steps_per_epoch: int
    loss: float  # this batch's loss
    images_per_s: float
    elapsed_s: float
    eta_s: float  # estimated seconds until the last epoch ends

    @property
    def fraction(self) -> float:
        return ((self.epoch - 1) * self.steps_per_epoch + self.step) / (
            self.epochs * self.steps_per_epoch
        )


@dataclass
class EpochStats:
    epoch: int
    train_loss: float  # mean over the epoch's batches
    test_loss: float | None  # on the test images given to train(), same loss and noise
    seconds: float
    images_per_s: float
    eta_s: float = 0.0  # estimated seconds until the last epoch ends (0 after the last)


@dataclass
class History:
    epochs: list[EpochStats] = field(default_factory=list)
    stopped: bool = False  # True if a stop was requested before the end
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "epochs": [asdict(e) for e in self.epochs],
            "stopped": self.stopped,
            "seconds": self.seconds,
        }


def _cpu_has_native_bf16() -> bool:
    """AVX-512-BF16 or AMX: without them bfloat16 convolutions are emulated and slower."""
    cpu = torch.cpu
    return any(
        getattr(cpu, check, lambda: False)()
        for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype to autocast the forward pass to, or None for plain float32.

    ``"auto"`` chooses bfloat16 only on CPUs that compute it natively: there it was
    1.2-1.4x faster per epoch for the models of 3x3 convolutions (5-20 % slower for the
    tiny ``conv-transpose`` and ``linear``) at the same test PSNR within 0.15 dB; on a
    CPU without it, 5-10x slower (measured).
    On CUDA and MPS ``"auto"`` stays float32 (not measured); ask for "bfloat16" there.
    """
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cpu" and _cpu_has_native_bf16():
        return torch.bfloat16
    return None


class LossFn(Protocol):
    """``F.mse_loss`` or ``F.binary_cross_entropy``: (output, target) -> loss."""

    def __call__(
        self, input: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean"
    ) -> torch.Tensor: ...


def loss_function(name: str) -> LossFn:
    """The loss called ``name`` in :data:`convae.nn.config.LOSSES`."""
    return F.mse_loss if name == "mse" else F.binary_cross_entropy


@torch.no_grad()
def evaluate_loss(
    model: Autoencoder,
    images: torch.Tensor,
    loss: str = "mse",
    noise: Noise = Noise(),
    seed: int = 0,
    batch_size: int = MEASURING_BATCH,
    fast_path: bool = True,
) -> float:
    """Mean loss over ``images`` (uint8 or float), input corrupted by ``noise``;
    ``fast_path``: through :func:`convae.nn.fast_path.fast_forward` (the same outputs)."""
    device = next(model.parameters()).device
    fn = loss_function(loss)
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    forward = fast_forward(model) if fast_path else model
    with eval_mode(model):
        for i in range(0, len(images), batch_size):
            x = to_unit_float(images[i : i + batch_size])
            noisy = noise.apply(x, generator=generator)
            out = forward(noisy.to(device)).float()
            total += fn(out, x.to(device), reduction="sum").item() / x[0].numel()
    return total / len(images)


def optimizer_step(
    model: Autoencoder,
    optimizer: Adam,
    x: torch.Tensor,
    target: torch.Tensor,
    loss_fn: LossFn,
    dtype: torch.dtype | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on one batch: forward ``x``, compare with ``target``, update.

    ``forward``: what computes ``model(x)``, e.g. :func:`convae.nn.fast_path.fast_forward`.

    Returns:
        (the output the loss was measured on, the loss), both still on the device.
    """
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        out = (forward or model)(x)
    loss = loss_fn(out.float(), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return out, loss


def with_architecture_defaults(cfg: TrainConfig, arch: str) -> TrainConfig:
    """``cfg`` with its learning rate and warm-up named: where it names none, those of the
    architecture ``arch`` (:class:`convae.nn.models.Architecture`'s ``lr`` and ``warmup``)."""
    own = ARCHITECTURES[arch]
    return dataclasses.replace(
        cfg,
        lr=own.lr if cfg.lr is None else cfg.lr,
        warmup=own.warmup if cfg.warmup is None else cfg.warmup,
    )


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimizer steps in one pass over ``n_images`` (the last batch may be smaller)."""
    return math.ceil(n_images / batch_size)


def make_optimizer(
    model: Autoencoder, cfg: TrainConfig, device: torch.device, total_steps: int
) -> Adam:
    """Adam at ``cfg.lr`` (or the architecture's own), following :func:`lr_schedule` over
    a run of ``total_steps``; fused: one kernel for all parameters instead of a few small
    ops per tensor."""
    cfg = with_architecture_defaults(cfg, model.config.arch)
    assert cfg.lr is not None
    return Adam(
        model.parameters(),
        lr=cfg.lr,
        betas=cfg.adam_betas,
        fused=device.type in ("cpu", "cuda"),
        schedule=lr_schedule(cfg, total_steps),
    )


def lr_schedule(cfg: TrainConfig, total_steps: int) -> Callable[[int], float] | None:
    """The factor of the learning rate at each step (0-based) of a run of ``total_steps``,
    or None for a constant rate: ``cfg.warmup`` steps of linear warm-up (at most a tenth
    of the run), then ``cfg.schedule`` (``"cosine"``: down to 0 at the last step)."""
    warmup = min(cfg.warmup or 0, total_steps // 10)
    cosine = cfg.schedule == "cosine"
    if not cosine and warmup == 0:
        return None

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cosine:  # 0 from the run's end on (the step-by-step mode's)
            return (1 + math.cos(math.pi * min(step, total_steps) / total_steps)) / 2
        return 1.0

    return factor


def train_epoch(
    model: Autoencoder,
    data: torch.Tensor,
    optimizer: Adam,
    cfg: TrainConfig,
    generator: torch.Generator,
    epoch: int = 1,
    on_step: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
    clock: dict | None = None,
) -> tuple[float, bool]:
    """One pass over ``data`` (uint8 or float, on the model's device) in shuffled batches.

    Returns:
        (mean batch loss, whether a stop was requested).
    """
    model.train()
    noise = cfg.noise
    fn = loss_function(cfg.loss)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    dtype = autocast_dtype(cfg.precision, data.device)
    n = len(data)
    steps = steps_per_epoch(n, cfg.batch_size)
    order = torch.randperm(n, generator=generator).to(data.device)
    forward = fast_forward(model) if cfg.fast_path else model
    clock = (
        clock
        if clock is not None
        else {"start": time.perf_counter(), "images": 0, "total_images": n * cfg.epochs}
    )
    total, done = 0.0, 0
    for step in range(steps):
        if stop is not None and stop.is_set():
            return (total / done if done else float("nan")), True
        target = to_unit_float(data[order[step * cfg.batch_size : (step + 1) * cfg.batch_size]])
        x = noise.apply(target, generator=generator) if not noise.is_clean else target
        x = x.contiguous(memory_format=memory_format)
        _, loss = optimizer_step(model, optimizer, x, target, fn, dtype, forward)
        value = loss.item()
        total += value
        done += 1
        clock["images"] += len(target)
        if on_step is not None:
            elapsed = time.perf_counter() - clock["start"]
            rate = clock["images"] / elapsed if elapsed > 0 else 0.0
            left = clock["total_images"] - clock["images"]
            on_step(
                Progress(
                    epoch,
                    cfg.epochs,
                    step + 1,
                    steps,
                    value,
                    rate,
                    elapsed,
                    left / rate if rate > 0 else float("inf"),
                )
            )
    return total / max(done, 1), False


def train(
    model: Autoencoder,
    train_images: torch.Tensor,
    cfg: TrainConfig,
    test_images: torch.Tensor | None = None,
    on_step: Callable[[Progress], None] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    stop: threading.Event | None = None,
    device: str | torch.device | None = None,
) -> History:
    """Train ``model`` in place to reconstruct ``train_images``.

    Args:
        model: any convae autoencoder; returned in eval mode on its original device.
        train_images: (N, C, H, W) uint8 or float in [0, 1]; ``cfg.limit`` keeps the first N.
        cfg: epochs, batch size, learning rate, loss, training noise, seed.
        test_images: if given, the test loss is computed after every epoch.
        on_step: called with a :class:`Progress` after every optimizer step.
        on_epoch: called with :class:`EpochStats` after every epoch.
        stop: when set (from any thread), training ends after the current step.
        device: where to train; default :func:`resolve_device`.

    Same seed, data and settings on the same device give the same weights.
    """
    cfg = with_architecture_defaults(cfg, model.config.arch)
    keep_freed_memory()
    if cfg.limit is not None:
        train_images = train_images[: cfg.limit]
    if len(train_images) == 0:
        raise ValueError("train needs at least one training image")
    dev = resolve_device(str(device) if device is not None else None)
    home = next(model.parameters()).device
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(dev).to(memory_format=memory_format)
    # kept as given (uint8: a quarter of the memory); each batch becomes floats as it is
    # taken, which costs a step nothing measurable and spares a 188 MB copy of MNIST
    data = train_images.to(dev)
    run_steps = steps_per_epoch(len(data), cfg.batch_size) * cfg.epochs
    optimizer = make_optimizer(model, cfg, dev, run_steps)
    generator = torch.Generator(device=dev).manual_seed(cfg.seed)
    history = History()
    clock = {"start": time.perf_counter(), "images": 0, "total_images": len(data) * cfg.epochs}
    try:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            loss, stopped = train_epoch(
                model, data, optimizer, cfg, generator, epoch, on_step, stop, clock
            )
            seconds = time.perf_counter() - t0
            if stopped:
                history.stopped = True
                break
            tl = None
            if test_images is not None and len(test_images):
                tl = evaluate_loss(
                    model, test_images, cfg.loss, cfg.noise, seed=cfg.seed, fast_path=cfg.fast_path
                )
            elapsed = time.perf_counter() - clock["start"]  # test losses included
            stats = EpochStats(
                epoch,
                loss,
                tl,
                seconds,
                len(data) / seconds,
                eta_s=elapsed / epoch * (cfg.epochs - epoch),
            )
            history.epochs.append(stats)
            if on_epoch is not None:
                on_epoch(stats)
    finally:
        model.to(home).to(memory_format=torch.contiguous_format).eval()
        history.seconds = time.perf_counter() - clock["start"]
    return history
