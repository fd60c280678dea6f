"""A student's submission to a class challenge, measured like a training is run.

A :class:`Submission` is a job for :class:`convae.classroom.queue.TrainingQueue`: the queue starts
it when a trainer slot is free (so a class that submits at once waits in line instead of
stalling the server), it measures the checkpoint in a child process
(:func:`convae.classroom.worker.call_in_child`, with the safe loader) on the held-out images, and
puts the result on the board (:meth:`convae.classroom.board_store.BoardStore.add_entry`). Any
thread may read its :meth:`~Submission.snapshot`.

No UI code lives here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from convae.base.errors import ConvaeError
from convae.classroom.board_store import BoardStore
from convae.classroom.challenge import Challenge, Result, clean_nickname, measure_checkpoint
from convae.classroom.worker import call_in_child
from convae.nn.config import TrainConfig

WAITING, MEASURING, DONE, FAILED = "waiting", "measuring", "done", "failed"
MEASURE_NICE = 19  # like trainings: the pages' sliders come first


@dataclass(frozen=True)
class SubmissionSnapshot:
    state: str  # waiting, measuring, done or failed
    entry_id: int | None
    result: Result | None
    error: str | None
    images_per_s: float = 0.0  # the queue's training-speed estimate ignores measurements
    eta_s: float = float("inf")  # unknown: the queue estimates from n_train

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)


class Submission:
    """Measure a checkpoint for a challenge and put it on the board.

    Args:
        store: the board.
        challenge: what it is measured on.
        nickname: who submits (checked now: :func:`convae.classroom.challenge.clean_nickname`).
        weights: the checkpoint file's bytes (:func:`convae.nn.checkpoint.to_bytes`).
        held_out: (N, C, H, W) uint8: the challenge dataset's held-out test images.
        shown: (S, C, H, W): the public test images the board shows reconstructions of.
        isolate: measure in a child process (the app); False: on the job's thread.
    """

    def __init__(
        self,
        store: BoardStore,
        challenge: Challenge,
        nickname: str,
        weights: bytes,
        held_out: torch.Tensor,
        shown: torch.Tensor,
        isolate: bool = True,
    ):
        self.store, self.challenge = store, challenge
        self.nickname = clean_nickname(nickname)
        self._weights = weights
        # private copies: sending a tensor to a child moves its storage into shared
        # memory in place, and these are slices of datasets other sessions read
        self._held_out, self._shown = held_out.clone(), shown.clone()
        self._isolate = isolate
        self.n_train = len(held_out)  # what the queue sizes the job by: one pass
        self.cfg = TrainConfig(epochs=1)
        self._lock = threading.Lock()
        self._state = WAITING
        self._entry_id: int | None = None
        self._result: Result | None = None
        self._error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Submission:
        if self._thread is not None:
            raise RuntimeError("this submission was already started")
        with self._lock:
            self._state = MEASURING
        thread = threading.Thread(target=self._run, name="convae-measure", daemon=True)
        thread.start()
        # named only once running: a `join` right after `started` meets a running thread
        # (as in TrainingJob.start)
        self._thread = thread
        return self

    def stop(self) -> None:
        """Nothing to stop: a measurement takes well under a second."""

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def finished(self) -> bool:
        with self._lock:
            return self._state in (DONE, FAILED)

    def snapshot(self) -> SubmissionSnapshot:
        with self._lock:
            return SubmissionSnapshot(self._state, self._entry_id, self._result, self._error)

    def _run(self) -> None:
        try:
            args = (self._weights, self.challenge, self._held_out, self._shown)
            if self._isolate:
                result = call_in_child(measure_checkpoint, *args, nice=MEASURE_NICE)
            else:
                result = measure_checkpoint(*args)
            entry_id = self.store.add_entry(
                self.challenge.slug, self.nickname, result, self._weights
            )
            with self._lock:
                self._result, self._entry_id, self._state = result, entry_id, DONE
        except Exception as e:  # reported through the snapshot, never raised in the UI
            message = str(e) if isinstance(e, ConvaeError) else f"{type(e).__name__}: {e}"
            with self._lock:
                self._error, self._state = message, FAILED
