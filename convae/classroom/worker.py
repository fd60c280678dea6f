"""Training in a child process, reported back as if it ran here.

A training on a thread of a web server shares the server's interpreter lock with every
page being drawn: each optimizer step's Python work (autograd, the optimizer, the
callbacks) makes everybody's sliders wait. :func:`fit_in_child` runs
:func:`convae.classroom.fitting.fit` in its own process instead (forked from a small server process
that has imported convae once, so a start takes milliseconds) at a lower priority, and
calls ``on_step`` / ``on_epoch`` here as the child's messages arrive. The model comes
back as its weights; a child that dies is reported as an error, never as a hang.
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.multiprocessing as mp

from convae.base.errors import ConvaeError
from convae.classroom.fitting import Fitted, fit
from convae.measuring.metrics import reconstruct
from convae.nn.config import TrainConfig
from convae.nn.models import Autoencoder
from convae.nn.trainer import EpochStats, Progress

SEND_EVERY_S = 0.1  # the child batches its per-step reports: a page polls twice a second
# What the fork server imports once, before any fork. "__main__" too: otherwise every
# child re-runs the program's main file (for `streamlit run`, Streamlit's command line).
PRELOAD = [
    "__main__",
    "convae.classroom.worker",
    "convae.classroom.challenge",
]  # challenge: measurements

_context_lock = threading.Lock()
_context: Any = None


def _mp_context():
    """The fork-server context, created once. Forking the web server itself would copy
    its threads' locks mid-use; the fork server is a fresh, single-threaded process."""
    global _context
    with _context_lock:
        if _context is None:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


def warm_up() -> None:
    """Start the fork server now (it imports torch and convae: a few seconds), so that
    the first training does not wait for it. Safe to call more than once."""
    from multiprocessing import forkserver

    _mp_context()
    forkserver.ensure_running()


def _pack(obj: Any) -> bytes:
    """Tensors as bytes: a tensor sent as itself is shared through a file descriptor
    that its sender must stay alive to hand over, and the child exits after its last
    message."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _unpack(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=True)


def _reap(proc: Any, receive: Any, grace_s: float) -> None:
    """End a child: ``grace_s`` seconds to exit by itself, then killed; its pipe closed."""
    proc.join(timeout=grace_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
    receive.close()


def _failure(e: Exception) -> str:
    """What a child reports of an error: convae's own messages as they are, anything
    else with its type."""
    return str(e) if isinstance(e, ConvaeError) else f"{type(e).__name__}: {e}"


def _child(
    conn: Any,
    model: Autoencoder,
    train_images: torch.Tensor,
    cfg: TrainConfig,
    kwargs: dict[str, Any],
    samples: torch.Tensor | None,
    stop: Any,
    nice: int,
    threads: int,
) -> None:
    """The child's whole life: train, report, send the weights, exit."""
    parent = os.getppid()
    if nice:
        os.nice(nice)
    torch.set_num_threads(threads)
    losses: list[float] = []
    last_sent = time.monotonic()
    local_stop = threading.Event()

    def on_step(p: Progress) -> None:
        nonlocal last_sent
        if stop.is_set() or os.getppid() != parent:  # asked to, or the server is gone
            local_stop.set()
        losses.append(p.loss)
        now = time.monotonic()
        if now - last_sent >= SEND_EVERY_S or p.step == p.steps_per_epoch:
            conn.send(("steps", p, list(losses)))
            losses.clear()
            last_sent = now

    def on_epoch(s: EpochStats) -> None:
        out = None if samples is None else reconstruct(model, samples)
        conn.send(("epoch", s, _pack(out)))

    try:
        fitted = fit(
            model,
            train_images,
            cfg,
            on_step=on_step,
            on_epoch=on_epoch,
            stop=local_stop,
            device="cpu",
            **kwargs,
        )
        conn.send(("done", _pack(fitted.model.state_dict()), fitted.history, fitted.meta))
    except Exception as e:
        conn.send(("failed", _failure(e)))
    finally:
        conn.close()


def fit_in_child(
    model: Autoencoder,
    train_images: torch.Tensor,
    cfg: TrainConfig,
    *,
    test_images: torch.Tensor | None = None,
    eval_images: torch.Tensor | None = None,
    meta: dict[str, Any] | None = None,
    samples: torch.Tensor | None = None,
    on_step: Callable[[Progress], None] | None = None,
    on_epoch: Callable[[EpochStats, torch.Tensor | None], None] | None = None,
    stop: threading.Event | None = None,
    nice: int = 0,
    threads: int = 1,
) -> Fitted:
    """:func:`convae.classroom.fitting.fit` in a child process; ``model`` gets the trained weights.

    Args:
        model, train_images, cfg, test_images, eval_images, meta: as for ``fit``.
        samples: float images reconstructed after every epoch; ``on_epoch`` gets them.
        on_step: called here for every optimizer step (in bursts, a few times a second).
        on_epoch: called here with the epoch's stats and the samples' reconstructions.
        stop: when set, the child stops after its current step (the model stays usable).
        nice: how much lower the child's scheduling priority is.
        threads: torch threads in the child.

    Raises:
        ConvaeError: the training failed, or the child process died.
    """
    ctx = _mp_context()
    receive, send = ctx.Pipe(duplex=False)
    child_stop = ctx.Event()
    if cfg.limit is not None:
        train_images = train_images[: cfg.limit]
    # Sending a tensor moves its whole storage into shared memory, in place, freeing the
    # old buffer: done to a dataset that other sessions' threads are reading, it crashed
    # the server (a segfault in a reader). The child gets private copies instead.
    train_images = train_images.clone()
    test_images, eval_images, samples = (
        None if t is None else t.clone() for t in (test_images, eval_images, samples)
    )
    kwargs = {"test_images": test_images, "eval_images": eval_images, "meta": meta}
    proc = ctx.Process(
        target=_child,
        args=(send, model, train_images, cfg, kwargs, samples, child_stop, nice, threads),
        name="convae-training",
        daemon=True,
    )
    proc.start()
    send.close()  # the child holds the only writing end: its exit ends our reads
    result: tuple | None = None
    try:
        while result is None:
            if stop is not None and stop.is_set():
                child_stop.set()
            if not receive.poll(0.1):
                continue
            try:
                message = receive.recv()
            except EOFError:
                break
            kind = message[0]
            if kind == "steps" and on_step is not None:
                progress, losses = message[1], message[2]
                for loss in losses:
                    on_step(dataclasses.replace(progress, loss=loss))
            elif kind == "epoch" and on_epoch is not None:
                on_epoch(message[1], _unpack(message[2]))
            elif kind in ("done", "failed"):
                result = message
    finally:
        if stop is not None and stop.is_set():
            child_stop.set()
        _reap(proc, receive, grace_s=30)
    if result is None:
        raise ConvaeError(
            f"the training process ended unexpectedly (exit code {proc.exitcode}); "
            "the server may be short of memory"
        )
    if result[0] == "failed":
        raise ConvaeError(result[1])
    _, state, history, description = result
    model.load_state_dict(_unpack(state))
    model.eval()
    return Fitted(model, history, description)


def _call_child(conn: Any, function: Callable[..., Any], args: tuple, nice: int) -> None:
    """A short job's whole life in the child: call, send the result back, exit."""
    if nice:
        os.nice(nice)
    torch.set_num_threads(1)
    try:
        conn.send(("done", function(*args)))
    except Exception as e:
        conn.send(("failed", _failure(e)))
    finally:
        conn.close()


def call_in_child(
    function: Callable[..., Any], *args: Any, nice: int = 0, timeout_s: float = 120.0
) -> Any:
    """``function(*args)`` in a child process of the fork server, on one thread at a
    lower priority; its return value comes back (both must pickle; send tensors as
    private copies, see :func:`fit_in_child`).

    Raises:
        ConvaeError: the function raised (its message), the child died, or it ran for
            longer than ``timeout_s`` (then it is killed).
    """
    ctx = _mp_context()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_call_child, args=(send, function, args, nice), name="convae-call", daemon=True
    )
    proc.start()
    send.close()
    result: tuple | None = None
    try:
        if receive.poll(timeout_s):
            try:
                result = receive.recv()
            except EOFError:
                pass
    finally:
        _reap(proc, receive, grace_s=5)
    if result is None:
        raise ConvaeError(
            f"the worker process ended unexpectedly or took over {timeout_s:.0f} s "
            f"(exit code {proc.exitcode})"
        )
    if result[0] == "failed":
        raise ConvaeError(result[1])
    return result[1]
