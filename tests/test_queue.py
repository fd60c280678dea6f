"""convae.classroom.queue.TrainingQueue: first come, first served, a few at a time, nobody lost."""

import threading
import time

import pytest
import torch
from support import wait_until

from convae import ConvaeError, ModelConfig, TrainConfig, build_model
from convae.classroom.jobs import TrainingJob
from convae.classroom.queue import (
    AlreadyQueuedError,
    QueueFullError,
    TrainingQueue,
    default_max_running,
)


def blobs(n: int) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        r = 4 + i % 16
        x[i, 0, r : r + 6, r : r + 6] = 255
    return x


def job(epochs: int = 1000, images: int = 256) -> TrainingJob:
    """A job that trains until stopped (epochs=1000), or a short one."""
    return TrainingJob(
        build_model(ModelConfig("conv-upsample"), seed=0),
        blobs(images),
        TrainConfig(epochs=epochs, batch_size=32),
        orphan_after_s=None,
    )


@pytest.fixture
def queue():
    q = TrainingQueue(max_running=1, max_waiting=3)
    yield q
    q.close()
    assert wait_until(lambda: TrainingJob.active_count() == 0)


def test_jobs_start_first_come_first_served_and_each_sees_its_place(queue):
    jobs = {name: job() for name in "abcd"}
    for name, j in jobs.items():
        queue.submit(name, j)
    a, b, c, d = (queue.place(n) for n in "abcd")
    assert a.running and a.position == 0 and jobs["a"].started
    assert [(p.running, p.position, p.waiting) for p in (b, c, d)] == [
        (False, 1, 3),
        (False, 2, 3),
        (False, 3, 3),
    ]
    assert not any(jobs[n].started for n in "bcd")
    assert 0 < b.start_in_s < c.start_in_s < d.start_in_s  # later places start later
    assert queue.counts() == (1, 3)

    jobs["a"].stop()  # the first ends: the second (not the last) takes its slot
    assert wait_until(lambda: queue.place("b").running)
    assert not jobs["c"].started and queue.place("c").position == 1
    assert queue.place("a") is None  # a finished job leaves the queue


def test_a_waiting_job_can_be_cancelled_and_the_ones_behind_move_up(queue):
    for name in "abc":
        queue.submit(name, job())
    assert queue.cancel("b")
    assert queue.place("b") is None
    assert queue.place("c").position == 1 and queue.counts() == (1, 1)
    assert not queue.cancel("b")  # nothing left to cancel


def test_cancelling_a_running_job_stops_it_and_frees_the_slot(queue):
    first, second = job(), job()
    queue.submit("a", first)
    queue.submit("b", second)
    assert queue.cancel("a")
    assert first.join(timeout=60) and first.snapshot().state == "stopped"
    assert wait_until(lambda: queue.place("b").running)


def test_one_job_per_owner_and_a_bound_on_the_queue(queue):
    queue.submit("a", job())
    with pytest.raises(AlreadyQueuedError, match="already have a training"):
        queue.submit("a", job())
    for name in "bcd":
        queue.submit(name, job())
    with pytest.raises(QueueFullError, match=r"queue is full \(3 waiting for 1 trainer"):
        queue.submit("e", job())
    assert queue.counts() == (1, 3)


def test_a_waiting_job_whose_tab_closed_is_dropped_and_never_trains():
    queue = TrainingQueue(max_running=1, max_waiting=5, gone_after_s=0.2)
    try:
        tab_open = threading.Event()
        tab_open.set()
        queue.submit("a", job())
        gone = job()
        queue.submit("b", gone, alive=tab_open.is_set)
        queue.submit("c", job())
        assert queue.place("b").position == 1
        tab_open.clear()  # the websocket closed
        time.sleep(0.05)
        assert queue.place("c").position == 2  # a blip shorter than the grace keeps it
        assert wait_until(lambda: queue.place("c").position == 1, timeout=5)
        assert queue.place("b") is None and not gone.started
    finally:
        queue.close()


def test_a_waiting_job_nobody_asks_about_is_dropped():
    queue = TrainingQueue(max_running=1, max_waiting=5, drop_after_s=0.3)
    try:
        queue.submit("a", job())
        queue.submit("b", job())
        assert wait_until(lambda: queue.counts()[1] == 0, timeout=5)
        assert queue.place("b") is None
    finally:
        queue.close()


def test_a_short_job_runs_to_the_end_and_the_next_one_starts_by_itself(queue):
    short, after = job(epochs=1, images=64), job(epochs=1, images=64)
    queue.submit("a", short)
    queue.submit("b", after)
    # nobody polls: the dispatcher starts the next job when the first finishes
    assert wait_until(lambda: after.started) and after.join(timeout=60)
    assert short.snapshot().state == "done" and after.snapshot().state == "done"
    assert queue.counts() == (0, 0)


@pytest.mark.slow
def test_the_running_limit_holds_for_every_process_sharing_the_slots_folder(tmp_path):
    """Two app processes (here two queues) on one machine share one training slot."""
    one = TrainingQueue(max_running=1, max_waiting=5, slots_dir=tmp_path)
    two = TrainingQueue(max_running=1, max_waiting=5, slots_dir=tmp_path)
    try:
        first, second = job(), job()
        one.submit("a", first)
        two.submit("b", second)
        time.sleep(1.2)  # more than two dispatcher rounds
        assert first.started and not second.started
        assert two.place("b").position == 1
        one.cancel("a")
        assert wait_until(lambda: second.started, timeout=10)
    finally:
        one.close()
        two.close()
    assert wait_until(lambda: TrainingJob.active_count() == 0)


def test_the_running_limit_follows_the_machine_or_the_configuration(monkeypatch):
    monkeypatch.delenv("CONVAE_MAX_TRAININGS", raising=False)
    assert default_max_running(cpu_count=2) == 1  # one core stays for the sliders
    assert default_max_running(cpu_count=8) == 7
    assert default_max_running(cpu_count=1) == 1
    monkeypatch.setenv("CONVAE_MAX_TRAININGS", "3")
    assert default_max_running(cpu_count=2) == 3
    monkeypatch.setenv("CONVAE_MAX_TRAININGS", "many")
    with pytest.raises(ConvaeError, match="CONVAE_MAX_TRAININGS must be a positive integer"):
        default_max_running()
