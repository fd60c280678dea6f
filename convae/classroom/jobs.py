"""Training in a background thread, observed through snapshots.

A :class:`TrainingJob` trains its own copy of a model with :func:`convae.classroom.fitting.fit` on a
worker thread. The worker only writes into a lock-protected progress record; any
other thread (a web page polling every half second) reads a consistent, immutable
:class:`JobSnapshot`. Stopping is a ``threading.Event``: training ends after the current
optimizer step and the model stays usable.

No UI code lives here, so the same job runs under Streamlit, in a notebook or a test.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from convae.base.errors import ConvaeError
from convae.classroom.fitting import fit
from convae.classroom.worker import fit_in_child
from convae.measuring.metrics import reconstruct
from convae.nn.config import TrainConfig
from convae.nn.models import Autoencoder
from convae.nn.trainer import EpochStats, Progress, steps_per_epoch

RUNNING, DONE, STOPPED, FAILED = "running", "done", "stopped", "failed"
MAX_CURVE_POINTS = 300  # per-step losses are averaged into at most this many points
# A job nobody watches (its browser tab closed) stops itself after this long without a
# heartbeat(). Generous: a browser slows the page's polling of a hidden tab to once a
# minute, and a teacher switching to slides must not lose the run.
ORPHAN_AFTER_S = 180.0


@dataclass(frozen=True)
class JobSnapshot:
    """What a job has done so far; safe to read from any thread."""

    state: str  # "running", "done", "stopped" or "failed"
    fraction: float  # 0..1 of all optimizer steps
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    images_per_s: float
    elapsed_s: float
    eta_s: float
    curve: tuple[tuple[float, float], ...]  # (epoch as a fraction, mean batch loss)
    train_losses: tuple[float, ...]  # one per finished epoch
    test_losses: tuple[float | None, ...]
    samples_in: torch.Tensor | None  # the fixed sample images as the model sees them
    samples_out: torch.Tensor | None  # their reconstructions after the last epoch
    samples_epoch: int  # the epoch samples_out is from (0: before training)
    error: str | None

    @property
    def finished(self) -> bool:
        return self.state != RUNNING


@dataclass
class _Record:
    epoch: int = 0
    epochs: int = 1
    step: int = 0
    steps_per_epoch: int = 1
    images_per_s: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float = float("inf")
    step_losses: list[float] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    test_losses: list[float | None] = field(default_factory=list)
    samples_out: torch.Tensor | None = None
    samples_epoch: int = 0


def _curve(losses: list[float], steps_per_epoch: int) -> tuple[tuple[float, float], ...]:
    """Per-step losses averaged into at most MAX_CURVE_POINTS (x in epochs)."""
    n = len(losses)
    if n == 0:
        return ()
    size = max(1, -(-n // MAX_CURVE_POINTS))
    out = []
    for i in range(0, n, size):
        chunk = losses[i : i + size]
        out.append(((i + len(chunk)) / steps_per_epoch, sum(chunk) / len(chunk)))
    return tuple(out)


def lower_priority(nice: int) -> None:
    """Make the calling thread yield the CPU to others (best effort: where threads have no
    nice value of their own, or it may not be changed, nothing happens)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError):
        pass


class TrainingJob:
    """Train a copy of ``model`` on a background thread.

    Args:
        model: the starting point; it is deep-copied, never modified.
        train_images: (N, C, H, W) uint8 or float in [0, 1] (``cfg.limit`` applies).
        cfg: how to train.
        test_images: for the test loss after each epoch.
        sample_images: a few images (float) whose reconstructions are refreshed after
            every epoch, for a live picture.
        eval_images: measured with MSE/PSNR/SSIM once training ends (clean, and with
            the training noise if any); goes into :attr:`meta` like the CLI's.
        meta: extra fields for the result's checkpoint metadata (e.g. ``dataset``).
        device: where to train (default: :func:`convae.nn.trainer.resolve_device`).
        threads: CPU threads for training (``torch.set_num_threads`` on the worker);
            default: leave torch's setting alone.
        nice: lower the worker thread's scheduling priority by this much (Linux: the
            nice value is per thread), so that a training takes the CPU only when the
            people moving sliders leave it free; None: unchanged.
        isolate: train in a child process (:mod:`convae.classroom.worker`) instead of on this
            process's thread, so that the training never holds this interpreter's lock
            (a web server's pages keep answering at full speed); ``device`` is then
            the CPU.
        orphan_after_s: stop (as if :meth:`stop` was called) when :meth:`heartbeat`
            was not called for this long; None: never. The page polling the job calls
            it, so a closed tab does not leave a thread training for nobody.

    Use :meth:`start`, poll :meth:`snapshot`, call :meth:`stop` to end early, and take
    :attr:`model` and :attr:`meta` once the snapshot says ``finished`` (not failed).
    """

    _active_lock = threading.Lock()
    _active: set[TrainingJob] = set()

    def __init__(
        self,
        model: Autoencoder,
        train_images: torch.Tensor,
        cfg: TrainConfig,
        test_images: torch.Tensor | None = None,
        sample_images: torch.Tensor | None = None,
        eval_images: torch.Tensor | None = None,
        meta: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        threads: int | None = None,
        orphan_after_s: float | None = ORPHAN_AFTER_S,
        nice: int | None = None,
        isolate: bool = False,
    ):
        if not isinstance(model, Autoencoder):
            raise TypeError(f"model must be a convae Autoencoder, got {type(model).__name__}")
        n = len(train_images) if cfg.limit is None else min(cfg.limit, len(train_images))
        if n == 0:
            raise ConvaeError("there are no training images to train on")
        self.cfg = cfg
        self._model = copy.deepcopy(model).cpu()
        for p in self._model.parameters():  # a cached model may have gradients switched off
            p.requires_grad_(True)
        self._train_images = train_images
        self._test_images = test_images
        self._samples_in = None if sample_images is None else self._noisy(sample_images.float())
        self._eval_images = eval_images
        self._meta_extra = dict(meta or {})
        self._device = device
        self._threads = threads
        self._nice = nice
        self._isolate = isolate
        self._orphan_after_s = orphan_after_s
        self._last_beat = time.monotonic()
        self.orphaned = False  # stopped because nobody watched any more
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = RUNNING
        self._error: str | None = None
        steps = max(1, steps_per_epoch(n, cfg.batch_size))
        self._record = _Record(epochs=cfg.epochs, steps_per_epoch=steps)
        self.meta: dict[str, Any] = {}
        self.n_train = n

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        noise = self.cfg.noise
        return x if noise.is_clean else noise.apply(x, seed=self.cfg.seed)

    # ------------------------------------------------------------------ control
    def start(self) -> TrainingJob:
        """Start the worker (once). To share a server's cores fairly, let a
        :class:`convae.classroom.queue.TrainingQueue` call this."""
        if self._thread is not None:
            raise RuntimeError("this job was already started; make a new TrainingJob")
        if self._samples_in is not None:
            out = reconstruct(self._model, self._samples_in)
            with self._lock:
                self._record.samples_out = out
        self._last_beat = time.monotonic()
        thread = threading.Thread(target=self._run, name="convae-training", daemon=True)
        with TrainingJob._active_lock:
            TrainingJob._active.add(self)
        thread.start()
        # named only once running: another thread that sees `started` may join it at once
        self._thread = thread
        return self

    def stop(self) -> None:
        """Ask the worker to stop after the current step (returns at once)."""
        self._stop.set()

    def heartbeat(self) -> None:
        """Someone is still watching: call it from the polling page (any thread)."""
        self._last_beat = time.monotonic()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True if it has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.snapshot().finished

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def finished(self) -> bool:
        """Done, stopped or failed: :meth:`snapshot` without building the whole record."""
        with self._lock:
            return self._state != RUNNING

    @classmethod
    def active_count(cls) -> int:
        """Jobs running in this process (all sessions together)."""
        with cls._active_lock:
            return len(cls._active)

    @property
    def model(self) -> Autoencoder:
        """The trained model (eval mode), once finished; do not read while running."""
        if not self.snapshot().finished:
            raise RuntimeError("the job is still running; wait until snapshot().finished")
        return self._model

    # ------------------------------------------------------------------ worker side
    def _on_step(self, p: Progress) -> None:
        if (
            self._orphan_after_s is not None
            and time.monotonic() - self._last_beat > self._orphan_after_s
        ):
            self.orphaned = True
            self._stop.set()  # ends after this step; the model stays usable
        with self._lock:
            r = self._record
            r.epoch, r.epochs = p.epoch, p.epochs
            r.step, r.steps_per_epoch = p.step, p.steps_per_epoch
            r.images_per_s, r.elapsed_s, r.eta_s = p.images_per_s, p.elapsed_s, p.eta_s
            r.step_losses.append(p.loss)

    def _on_epoch(self, s: EpochStats, out: torch.Tensor | None = None) -> None:
        # runs on the worker between epochs, so reading the model here is safe (a child
        # process sends the samples' reconstructions along instead)
        if out is None and self._samples_in is not None and not self._isolate:
            out = reconstruct(self._model, self._samples_in)
        with self._lock:
            r = self._record
            r.train_losses.append(s.train_loss)
            r.test_losses.append(s.test_loss)
            if out is not None:
                r.samples_out, r.samples_epoch = out, s.epoch

    def _run(self) -> None:
        try:
            common: dict[str, Any] = {
                "test_images": self._test_images,
                "eval_images": self._eval_images,
                "meta": self._meta_extra,
                "on_step": self._on_step,
                "on_epoch": self._on_epoch,
                "stop": self._stop,
            }
            data = (self._model, self._train_images, self.cfg)
            if self._isolate:
                fitted = fit_in_child(
                    *data,
                    samples=self._samples_in,
                    nice=self._nice or 0,
                    threads=self._threads or 1,
                    **common,
                )
            else:
                if self._threads:
                    torch.set_num_threads(self._threads)
                if self._nice:
                    lower_priority(self._nice)
                fitted = fit(*data, device=self._device, **common)
            for p in self._model.parameters():
                p.requires_grad_(False)
            with self._lock:
                self.meta = fitted.meta
                self._state = STOPPED if fitted.history.stopped else DONE
        except Exception as e:  # reported through the snapshot, never raised in the UI
            message = str(e) if isinstance(e, ConvaeError) else f"{type(e).__name__}: {e}"
            with self._lock:
                self._error = message
                self._state = FAILED
        finally:
            with TrainingJob._active_lock:
                TrainingJob._active.discard(self)

    # ------------------------------------------------------------------ reader side
    def snapshot(self) -> JobSnapshot:
        with self._lock:
            r = self._record
            total = r.epochs * r.steps_per_epoch
            done = (r.epoch - 1) * r.steps_per_epoch + r.step if r.epoch else 0
            return JobSnapshot(
                state=self._state,
                fraction=1.0 if self._state == DONE else min(1.0, done / total),
                epoch=r.epoch,
                epochs=r.epochs,
                step=r.step,
                steps_per_epoch=r.steps_per_epoch,
                images_per_s=r.images_per_s,
                elapsed_s=r.elapsed_s,
                eta_s=0.0 if self._state != RUNNING else r.eta_s,
                curve=_curve(r.step_losses, r.steps_per_epoch),
                train_losses=tuple(r.train_losses),
                test_losses=tuple(r.test_losses),
                samples_in=self._samples_in,
                samples_out=r.samples_out,
                samples_epoch=r.samples_epoch,
                error=self._error,
            )
