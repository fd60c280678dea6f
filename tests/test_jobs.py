"""convae.classroom.jobs.TrainingJob: background training observed through snapshots."""

import os
import signal
import threading
import time

import pytest
import torch
from support import wait_until

from convae import ConvaeError, ModelConfig, TrainConfig, build_model
from convae.classroom.jobs import MAX_CURVE_POINTS, TrainingJob, _curve


def images(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    # blobs at random places: learnable, unlike uniform noise
    for i in range(n):
        r, c = torch.randint(4, 20, (2,), generator=g).tolist()
        x[i, 0, r : r + 6, c : c + 6] = 1
    return (x * 255).byte()


def small_model(arch="conv-upsample"):
    return build_model(ModelConfig(arch), seed=0)


@pytest.mark.parametrize("isolate", [False, True], ids=["thread", "child process"])
def test_job_trains_a_copy_and_reports_everything(isolate):
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = images()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=5e-3)
    job = TrainingJob(
        model,
        data,
        cfg,
        test_images=data[:16],
        sample_images=data[:4].float() / 255,
        eval_images=data[:16],
        meta={"dataset": "blobs"},
        isolate=isolate,
    ).start()
    assert job.join(timeout=120)
    snap = job.snapshot()
    assert snap.state == "done" and snap.finished and snap.error is None
    assert snap.fraction == 1.0 and snap.eta_s == 0.0
    assert (snap.epoch, snap.epochs, snap.step, snap.steps_per_epoch) == (2, 2, 3, 3)
    assert len(snap.train_losses) == len(snap.test_losses) == 2
    assert snap.train_losses[1] < snap.train_losses[0]  # it learns: both losses fall
    assert snap.test_losses[1] < snap.test_losses[0]
    assert len(snap.curve) == 6 and snap.curve[-1][0] == pytest.approx(2.0)
    assert snap.samples_out.shape == (4, 1, 28, 28) and snap.samples_epoch == 2
    # the caller's model is untouched; the job's model is a trained, frozen copy
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert job.model is not model and not job.model.training
    assert not any(p.requires_grad for p in job.model.parameters())
    meta = job.meta
    assert meta["dataset"] == "blobs" and meta["train_noise"] == "none"
    assert meta["metrics"]["clean"]["n"] == 16
    assert len(meta["history"]["epochs"]) == 2 and meta["train_images"] == 96
    assert TrainingJob.active_count() == 0


def test_job_can_be_stopped_and_keeps_a_usable_model():
    data = images(2000)
    job = TrainingJob(
        small_model(), data, TrainConfig(epochs=50, batch_size=8), eval_images=data[:8]
    )
    job.start()
    deadline = time.time() + 60
    while job.snapshot().step < 2 and time.time() < deadline:
        time.sleep(0.01)
    job.stop()
    assert job.join(timeout=60)
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.fraction < 1
    assert job.meta["history"]["stopped"] is True
    out = job.model(data[:2].float() / 255)
    assert out.shape == (2, 1, 28, 28) and torch.isfinite(out).all()


def test_job_with_training_noise_shows_noisy_samples_and_measures_both():
    data = images(64)
    clean = data[:4].float() / 255
    job = TrainingJob(
        small_model(),
        data,
        TrainConfig(epochs=1, noise="gaussian:0.3"),
        sample_images=clean,
        eval_images=data[:8],
    ).start()
    assert job.join(timeout=60)
    snap = job.snapshot()
    assert not torch.equal(snap.samples_in, clean)  # the model sees noisy input
    assert set(job.meta["metrics"]) == {"clean", "gaussian:0.3"}
    assert job.meta["train_noise"] == "gaussian:0.3"


@pytest.mark.parametrize("isolate", [False, True], ids=["thread", "child process"])
def test_failure_in_the_worker_becomes_a_message_not_an_exception(isolate):
    bad = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)  # colour images for a grey model
    job = TrainingJob(small_model(), bad, TrainConfig(epochs=1), isolate=isolate).start()
    assert job.join(timeout=60)
    snap = job.snapshot()
    assert snap.state == "failed"
    # the exception's type, then its message (torch's: the channel counts do not match)
    assert snap.error.startswith("RuntimeError: ") and "channels" in snap.error, snap.error
    with pytest.raises(RuntimeError, match="still running"):
        _ = TrainingJob(small_model(), images(8), TrainConfig()).model  # never started


def test_snapshot_is_readable_while_running_from_another_thread():
    data = images(3000)
    job = TrainingJob(small_model(), data, TrainConfig(epochs=3, batch_size=16)).start()
    seen, errors = [], []

    def reader():
        try:
            while len(seen) < 200:
                s = job.snapshot()
                if s.finished:
                    break
                seen.append((s.fraction, len(s.curve)))  # read while the job runs
                time.sleep(0.005)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    t.join(timeout=60)
    job.stop()
    job.join(timeout=60)
    assert not errors
    fractions = [f for f, _ in seen]
    # snapshots were read while it ran, and it got on meanwhile: the order check below
    # compares real progress (3 epochs of 188 steps outlast many reads)
    assert len(seen) >= 2 and fractions[-1] > fractions[0], fractions
    assert fractions == sorted(fractions)  # progress never goes backwards
    assert all(n <= MAX_CURVE_POINTS for _, n in seen)


def test_bad_settings_fail_in_the_caller():
    with pytest.raises(ConvaeError, match="no training images"):
        TrainingJob(small_model(), images(0), TrainConfig())
    with pytest.raises(ConvaeError, match="noise"):
        TrainingJob(small_model(), images(4), TrainConfig(noise="loud"))
    with pytest.raises(TypeError, match="Autoencoder"):
        TrainingJob(torch.nn.Linear(2, 2), images(4), TrainConfig())
    job = TrainingJob(small_model(), images(4), TrainConfig()).start()
    with pytest.raises(RuntimeError, match="already started"):
        job.start()
    job.join(timeout=60)


def test_frozen_cached_models_can_be_trained_through_a_job():
    model = small_model()
    for p in model.parameters():
        p.requires_grad_(False)  # as the app's shared models are
    job = TrainingJob(model, images(32), TrainConfig(epochs=1)).start()
    assert job.join(timeout=60) and job.snapshot().state == "done"
    assert not any(p.requires_grad for p in model.parameters())


def test_curve_is_averaged_down_to_a_bounded_number_of_points():
    assert _curve([], 10) == ()
    assert _curve([1.0, 3.0], 2) == ((0.5, 1.0), (1.0, 3.0))
    long = _curve([1.0] * 10_000, 100)
    assert len(long) <= MAX_CURVE_POINTS and long[-1][0] == pytest.approx(100.0)


def test_a_job_in_a_child_process_can_be_stopped_and_keeps_a_usable_model():
    data = images(2000)
    job = TrainingJob(
        small_model(), data, TrainConfig(epochs=50, batch_size=8), isolate=True, nice=5
    ).start()
    assert wait_until(lambda: job.snapshot().step >= 5)
    job.stop()
    assert job.join(timeout=60)
    snap = job.snapshot()
    assert snap.state == "stopped" and 0 < snap.fraction < 1
    out = job.model(data[:2].float() / 255)
    assert out.shape == (2, 1, 28, 28) and torch.isfinite(out).all()
    assert TrainingJob.active_count() == 0


def test_a_child_process_that_dies_is_a_failed_job_not_a_hang():
    job = TrainingJob(
        small_model(), images(2000), TrainConfig(epochs=50, batch_size=8), isolate=True
    ).start()
    assert wait_until(lambda: job.snapshot().step >= 2)
    training = [pid for server in children_of(os.getpid()) for pid in children_of(server)]
    assert training, "no training process found under the fork server"
    for pid in training:
        os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer would
    assert job.join(timeout=60)
    snap = job.snapshot()
    assert snap.state == "failed" and "ended unexpectedly" in snap.error
    assert TrainingJob.active_count() == 0


def children_of(parent: int) -> list[int]:
    """Processes whose parent is ``parent`` (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                pids.append(int(entry))
    return pids


def test_a_child_process_job_leaves_the_callers_tensors_where_they_are():
    """Sending a tensor to a child moves its storage into shared memory, in place, and
    frees the old buffer: done to the server's dataset while other sessions read it, it
    crashed the server. The job must send copies and leave the dataset untouched."""
    data = images(256)
    job = TrainingJob(
        small_model(),
        data,
        TrainConfig(epochs=1, batch_size=64, limit=128),
        test_images=data[:16],  # views of the same storage, as the app passes them
        eval_images=data[:16],
        sample_images=data[:4].float() / 255,
        isolate=True,
    ).start()
    assert job.join(timeout=120) and job.snapshot().state == "done"
    assert not data.is_shared()
