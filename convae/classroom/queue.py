"""A fair queue for trainings: first come, first served, a few at a time.

A class that presses Start together must not be told "come back later", and trainings
must not crowd out everybody else's sliders. :class:`TrainingQueue` runs at most
``max_running`` :class:`~convae.classroom.jobs.TrainingJob` s at once and keeps the others waiting
in the order they came; each owner (a browser session) has at most one job queued or
running, sees its place and an estimated start, and can cancel. A waiting job whose owner
is gone (the tab closed: its ``alive`` check fails, or nobody asked about it for
``drop_after_s``) is dropped before it wastes a slot.

With ``slots_dir``, the running limit holds for every process on the machine that uses
that folder (one app process per core behind a load balancer): a running job holds an
exclusive lock on one of ``max_running`` slot files. The operating system releases the
lock if a process dies, so a crash never leaks a slot.

No UI code lives here: the app keeps one queue per server process.
"""

from __future__ import annotations

import fcntl
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from convae.base.errors import ConvaeError
from convae.nn.config import TrainConfig

MAX_RUNNING_ENV = "CONVAE_MAX_TRAININGS"
MAX_WAITING_ENV = "CONVAE_MAX_WAITING"
SLOTS_DIR_ENV = "CONVAE_TRAINING_SLOTS"
DEFAULT_MAX_WAITING = 40
DROP_AFTER_S = 30.0  # no page asked about a waiting job for this long: its tab is gone
GONE_AFTER_S = 5.0  # its ``alive`` check failed this long: not a reconnecting network blip
DEFAULT_IMAGES_PER_S = 3000.0  # the estimate before this server has trained anything
POLL_S = 0.5  # how often the dispatcher looks for a free slot held by another process


class QueueFullError(ConvaeError):
    """The queue holds as many waiting trainings as it allows."""


class AlreadyQueuedError(ConvaeError):
    """This owner already has a training waiting or running."""


def default_max_running(cpu_count: int | None = None) -> int:
    """Trainings at once on this machine: one core is kept for everybody's sliders.

    ``$CONVAE_MAX_TRAININGS`` overrides it (a positive integer).
    """
    env = os.environ.get(MAX_RUNNING_ENV, "").strip()
    if env:
        value = int(env) if env.isdigit() else 0
        if value < 1:
            raise ConvaeError(f"{MAX_RUNNING_ENV} must be a positive integer, got {env!r}")
        return value
    cores = cpu_count if cpu_count is not None else os.cpu_count() or 1
    return max(1, cores - 1)


def queue_from_env() -> TrainingQueue:
    """The queue as configured by ``$CONVAE_MAX_TRAININGS``, ``$CONVAE_MAX_WAITING`` and
    ``$CONVAE_TRAINING_SLOTS`` (a folder shared by the machine's app processes)."""
    return TrainingQueue(slots_dir=os.environ.get(SLOTS_DIR_ENV) or None)


def default_max_waiting() -> int:
    env = os.environ.get(MAX_WAITING_ENV, "").strip()
    if not env:
        return DEFAULT_MAX_WAITING
    if not env.isdigit():
        raise ConvaeError(f"{MAX_WAITING_ENV} must be a non-negative integer, got {env!r}")
    return int(env)


class _Progress(Protocol):
    @property
    def images_per_s(self) -> float: ...
    @property
    def eta_s(self) -> float: ...


class Job(Protocol):
    """What the queue needs of a job: a :class:`~convae.classroom.jobs.TrainingJob`, or a class
    challenge's measurement (:class:`~convae.classroom.submission.Submission`), whose ``n_train``
    images in ``cfg.epochs`` passes size its expected duration."""

    n_train: int
    cfg: TrainConfig

    @property
    def finished(self) -> bool: ...
    def start(self) -> Any: ...
    def stop(self) -> None: ...
    def snapshot(self) -> _Progress: ...


@dataclass(frozen=True)
class Place:
    """Where an owner's job stands: running, or waiting at ``position``."""

    job: Job
    running: bool
    position: int  # 1 = next to start; 0 when running
    waiting: int  # jobs waiting in all
    start_in_s: float  # estimated wait before it starts (0 when running)


@dataclass
class _Entry:
    owner: str
    job: Job
    alive: Callable[[], bool]
    seen: float = field(default_factory=time.monotonic)
    gone_since: float | None = None
    slot: IO[bytes] | None = None
    patient: bool = False  # runs even when nobody asks about it

    def wanted(self, now: float, drop_after_s: float, gone_after_s: float) -> bool:
        """Someone still waits for this job."""
        if self.patient:
            return True
        if now - self.seen > drop_after_s:
            return False
        if _alive(self):
            self.gone_since = None
            return True
        if self.gone_since is None:
            self.gone_since = now
        return now - self.gone_since <= gone_after_s


class _Slots:
    """``n`` machine-wide running slots: exclusive locks on files in ``folder``."""

    def __init__(self, folder: Path, n: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.paths = [folder / f"slot-{i}.lock" for i in range(n)]

    def try_take(self) -> IO[bytes] | None:
        for path in self.paths:
            handle = open(path, "ab")  # kept open: the open file holds the lock
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return handle
            except OSError:
                handle.close()
        return None


class TrainingQueue:
    """First-come-first-served trainings, at most ``max_running`` at once.

    Args:
        max_running: trainings at once (in this process, or machine-wide with
            ``slots_dir``); default :func:`default_max_running`.
        max_waiting: trainings allowed to wait; beyond it :meth:`submit` refuses.
        slots_dir: a folder shared by every app process of the machine (see the module).
        drop_after_s: a waiting job nobody asked about (:meth:`place`) for this long is
            dropped, as is one whose ``alive`` check has failed for ``gone_after_s`` (a
            network blip that reconnects within it keeps the place).
    """

    def __init__(
        self,
        max_running: int | None = None,
        max_waiting: int | None = None,
        slots_dir: str | Path | None = None,
        drop_after_s: float = DROP_AFTER_S,
        gone_after_s: float = GONE_AFTER_S,
    ):
        self.max_running = default_max_running() if max_running is None else max_running
        self.max_waiting = default_max_waiting() if max_waiting is None else max_waiting
        if self.max_running < 1 or self.max_waiting < 0:
            raise ValueError("max_running must be >= 1 and max_waiting >= 0")
        self._slots = None if slots_dir is None else _Slots(Path(slots_dir), self.max_running)
        self.drop_after_s, self.gone_after_s = drop_after_s, gone_after_s
        self._lock = threading.Condition()
        self._waiting: list[_Entry] = []
        self._running: list[_Entry] = []
        self._rate = DEFAULT_IMAGES_PER_S  # images/s of the last training here
        self._closed = False
        self._dispatcher = threading.Thread(
            target=self._dispatch_forever, name="convae-queue", daemon=True
        )
        self._dispatcher.start()

    # ------------------------------------------------------------------ owners' side
    def submit(
        self,
        owner: str,
        job: Job,
        alive: Callable[[], bool] = lambda: True,
        patient: bool = False,
    ) -> Place:
        """Queue ``job`` for ``owner``; it starts as soon as a slot is free. A ``patient``
        job is never dropped for want of a watcher (a challenge's measurement: it takes
        a second, and its student may have moved on to another page).

        Raises:
            AlreadyQueuedError: ``owner`` has a job waiting or running.
            QueueFullError: ``max_waiting`` jobs wait already.
        """
        with self._lock:
            self._collect()
            if self._find(owner) is not None:
                raise AlreadyQueuedError(
                    "you already have a training waiting or running: cancel it first"
                )
            if len(self._waiting) >= self.max_waiting:
                raise QueueFullError(
                    f"the training queue is full ({len(self._waiting)} waiting for "
                    f"{self.max_running} trainer(s)); try again in a few minutes"
                )
            self._waiting.append(_Entry(owner, job, alive, patient=patient))
            self._start_what_fits()
            self._lock.notify_all()
            place = self._place(owner)
            assert place is not None
            return place

    def place(self, owner: str) -> Place | None:
        """``owner``'s job, running or waiting (None: it has none here). Asking counts as
        the owner still being there."""
        with self._lock:
            self._collect()
            self._start_what_fits()
            entry = self._find(owner)
            if entry is not None:
                entry.seen = time.monotonic()
            return self._place(owner)

    def cancel(self, owner: str) -> bool:
        """Take ``owner``'s waiting job out of the queue, or stop its running one (it
        ends after the current step). True if there was one."""
        with self._lock:
            for entry in self._waiting:
                if entry.owner == owner:
                    self._waiting.remove(entry)
                    self._lock.notify_all()
                    return True
            for entry in self._running:
                if entry.owner == owner:
                    entry.job.stop()
                    return True
            return False

    def counts(self) -> tuple[int, int]:
        """(running, waiting) in this process, for the teacher."""
        with self._lock:
            self._collect()
            return len(self._running), len(self._waiting)

    def close(self) -> None:
        """Stop the dispatcher, drop waiting jobs and stop running ones (tests, shutdown)."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            for entry in self._running:
                entry.job.stop()
            self._lock.notify_all()
        self._dispatcher.join(timeout=5)

    # ------------------------------------------------------------------ inside
    def _find(self, owner: str) -> _Entry | None:
        for entry in (*self._running, *self._waiting):
            if entry.owner == owner:
                return entry
        return None

    def _collect(self) -> None:
        """Forget finished jobs (freeing their slots) and waiting jobs nobody wants."""
        now = time.monotonic()
        for entry in list(self._running):  # every page's poll asks: keep it cheap
            if entry.job.finished:
                rate = entry.job.snapshot().images_per_s
                if rate > 0:
                    self._rate = rate
                self._release(entry)
                self._running.remove(entry)
        self._waiting = [
            e for e in self._waiting if e.wanted(now, self.drop_after_s, self.gone_after_s)
        ]

    def _release(self, entry: _Entry) -> None:
        if entry.slot is not None:
            entry.slot.close()  # closing the file drops its lock
            entry.slot = None

    def _start_what_fits(self) -> None:
        while self._waiting and len(self._running) < self.max_running:
            slot = None
            if self._slots is not None:
                slot = self._slots.try_take()
                if slot is None:
                    return  # another process holds every slot: the dispatcher retries
            entry = self._waiting.pop(0)
            entry.slot = slot
            try:
                entry.job.start()
            except Exception:
                self._release(entry)
                raise
            self._running.append(entry)

    def _dispatch_forever(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    for entry in self._running:
                        self._release(entry)
                    return
                self._collect()
                self._start_what_fits()
                self._lock.wait(timeout=POLL_S)

    def _place(self, owner: str) -> Place | None:
        for entry in self._running:
            if entry.owner == owner:
                return Place(entry.job, True, 0, len(self._waiting), 0.0)
        # when each slot frees up: running jobs' remaining time, then the queue in order
        free_at = [self._remaining(e.job) for e in self._running]
        free_at += [0.0] * (self.max_running - len(free_at))
        for i, entry in enumerate(self._waiting):
            free_at.sort()
            if entry.owner == owner:
                return Place(entry.job, False, i + 1, len(self._waiting), free_at[0])
            free_at[0] += self._duration(entry.job)
        return None

    def _duration(self, job: Job) -> float:
        return job.n_train * job.cfg.epochs / self._rate

    def _remaining(self, job: Job) -> float:
        eta = job.snapshot().eta_s
        return eta if math.isfinite(eta) else self._duration(job)  # before its first step


def _alive(entry: _Entry) -> bool:
    try:
        return bool(entry.alive())
    except Exception:  # a broken check must not break the queue; keep the job
        return True
