"""What the app must survive in a room full of people, at the package level: hostile
uploads (through the exact functions the pages call with the uploaded bytes), memory
bounds, interrupted training and saving, and the server settings.

The same uploads through the pages themselves (AppTest) and broken data folders are in
``test_reliability_app.py``; one real-browser upload in ``test_browser.py``.
Memory is measured in a fresh subprocess (``ru_maxrss``), where a high-water mark means
something; Pillow's and torch's buffers are invisible to ``tracemalloc``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from hostile import (
    EPS,
    MNIST,
    ROOT,
    blank_png,
    good_images,
    hostile_checkpoints,
    hostile_images,
    png,
    torch_bytes,
)
from PIL import Image
from support import wait_until

from convae import CheckpointError, ModelConfig, TrainConfig, build_model, load_checkpoint
from convae.base.files import remove_stale_temporaries
from convae.classroom.jobs import TrainingJob
from convae.classroom.queue import TrainingQueue
from convae.data.images import ImageError, image_to_tensor
from convae.nn.checkpoint import FORMAT, MAX_BYTES


# ================================================================ 1. uploaded checkpoints
def test_every_hostile_checkpoint_is_refused_with_a_message_and_runs_nothing(tmp_path):
    marker = tmp_path / "MARKER"
    for name, data in hostile_checkpoints(marker).items():
        # exactly what ui/sidebar.py's _on_upload does with the uploaded bytes
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(data, expect_shape=MNIST)
        message = str(caught.value)
        assert "the uploaded file" in message and len(message) < 600, (name, message)
        assert not marker.exists(), f"{name} ran code"
    with pytest.raises(CheckpointError, match="over the .* MB limit for a convae checkpoint"):
        load_checkpoint(bytes(MAX_BYTES + 1), expect_shape=MNIST)


def test_checkpoint_messages_say_what_is_wrong(tmp_path):
    files = hostile_checkpoints(tmp_path / "MARKER")
    expected = {
        "evil-torch-zip.pt": "could run code when loaded, so it was refused",
        "evil-pickle-protocol2.pt": "could run code when loaded, so it was refused",
        "evil-legacy-torch.pt": "could run code when loaded, so it was refused",
        "evil-pickle.pt": "truncated, corrupted or not a torch file",
        "flipped-byte.pt": "it is corrupted .* do not match their checksum",
        "truncated.pt": "truncated, corrupted or not a torch file",
        "cifar-model.pt": r"input shape \(3, 32, 32\), but \(1, 28, 28\) is needed",
        "other-arch-weights.pt": "the weights do not fit a conv-upsample model",
        "plain-state-dict.pt": "not a convae checkpoint",
        "giant-config.pt": "the weights do not fit a linear model",
        "deflate-bomb.pt": "compressed archive",
        "empty.pt": "is empty",
    }
    for name, pattern in expected.items():
        with pytest.raises(CheckpointError, match=pattern):
            load_checkpoint(files[name], expect_shape=MNIST)


@pytest.mark.parametrize(
    "model",
    [
        {"arch": "linear", "in_shape": [1, 28, 28], "hidden": 10**100},
        {"arch": "linear", "in_shape": [1, 28, 28], "hidden": 1.5},
        {"arch": "conv-upsample", "in_shape": [1, 28, 28], "depths": [2**40, 2**40]},
        {"arch": "conv-deep", "in_shape": [1, 28, 28], "depths": [10**6] * 3},
        {"arch": ["linear"]},
        {"arch": "linear", "in_shape": "28"},
        "linear",
        None,
    ],
    ids=["huge-int", "float", "overflow", "huge-conv", "list-arch", "str-shape", "str", "none"],
)
def test_absurd_model_settings_are_a_checkpoint_error_not_a_crash(model):
    data = torch_bytes(
        {"format": FORMAT, "format_version": 1, "model": model, "state_dict": {}, "meta": {}}
    )
    with pytest.raises(CheckpointError):
        load_checkpoint(data, expect_shape=MNIST)


MEMORY_PROBE = r"""
import json, resource, sys
from convae import load_checkpoint, CheckpointError
from convae.data.images import image_to_tensor, ImageError
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = {}
for kind, path in json.loads(sys.argv[1]):  # smallest expected peak first
    data = open(path, "rb").read()
    before = peak()
    try:
        if kind == "checkpoint":
            load_checkpoint(data, expect_shape=(1, 28, 28))
        else:
            image_to_tensor(data, (1, 28, 28))
        result = "ok"
    except (CheckpointError, ImageError) as e:
        result = str(e)
    out[path] = [peak() - before, result]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_memory_stays_bounded_for_bombs_and_huge_pictures(tmp_path):
    """Fresh process, one high-water mark per input: tiny files must not allocate
    gigabytes, and a real 4000x4000 RGBA picture costs about one decoded copy."""
    ckpts = hostile_checkpoints(tmp_path / "MARKER")
    files = {
        "giant-config.pt": ckpts["giant-config.pt"],
        "deflate-bomb.pt": ckpts["deflate-bomb.pt"],
        "bomb.png": blank_png(30000, 30000, rows=16),
        "huge-rgba.png": png(Image.new("RGBA", (4000, 4000), (255, 255, 255, 0))),
    }
    order = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        order.append(["checkpoint" if name.endswith(".pt") else "image", str(tmp_path / name)])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, json.dumps(order)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    peaks = {Path(k).name: v for k, v in json.loads(proc.stdout.splitlines()[-1]).items()}
    limits_mb = {
        "giant-config.pt": 50,
        "deflate-bomb.pt": 20,
        "bomb.png": 20,
        "huge-rgba.png": 100,
    }  # decoded RGBA alone is 64 MB (it was 3x that)
    for name, (mb, result) in peaks.items():
        assert mb < limits_mb[name], (name, mb, result)
    assert "huge-rgba.png" in peaks and peaks["huge-rgba.png"][1] == "ok"
    assert all(peaks[n][1] != "ok" for n in ("giant-config.pt", "deflate-bomb.pt", "bomb.png"))


# ================================================================== 2. uploaded images
def test_hostile_images_get_a_message_and_good_ones_convert(monkeypatch):
    from PIL import EpsImagePlugin

    ran = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: ran.append(a))
    for shape in (MNIST, (3, 32, 32)):
        for name, data in hostile_images().items():
            # exactly what ui/widgets.py's pick_images does with each uploaded file
            with pytest.raises(ImageError) as caught:
                image_to_tensor(data, shape)
            assert 10 < len(str(caught.value)) < 300, name
        for name, data in good_images().items():
            t = image_to_tensor(data, shape)
            assert t.shape == shape and t.dtype == torch.float32, name
            assert 0 <= t.min() and t.max() <= 1 and torch.isfinite(t).all(), name
    assert not ran, "a PostScript upload reached Ghostscript"
    with pytest.raises(ImageError, match="not a picture"):
        image_to_tensor(EPS, MNIST)
    with pytest.raises(ImageError, match="7000 x 7000 pixels"):
        image_to_tensor(blank_png(7000, 7000), MNIST)


def test_large_pictures_still_show_the_same_picture():
    """The memory-saving shrink must not change what the model is given."""
    img = Image.new("L", (2400, 1800), 0)
    img.paste(255, (900, 600, 1500, 1200))  # a centred bright square
    for data in (
        png(img),
        png(img.convert("RGBA")),
        png(img, "JPEG"),
        png(Image.fromarray(np.asarray(img).astype(np.uint16) * 257)),
    ):
        t = image_to_tensor(data, MNIST)[0]
        assert t[12:16, 12:16].mean() > 0.9 and t[:4, :4].max() < 0.1


# ====================================================================== 4. interrupted
def blobs(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        r, c = torch.randint(4, 20, (2,), generator=g).tolist()
        x[i, 0, r : r + 6, c : c + 6] = 1
    return (x * 255).byte()


def long_job(**kwargs) -> TrainingJob:
    return TrainingJob(
        build_model(ModelConfig("conv-upsample"), seed=0),
        blobs(512),
        TrainConfig(epochs=1000, batch_size=8),
        eval_images=blobs(8),
        **kwargs,
    )


def test_stop_during_training_keeps_a_usable_model_and_ends_the_thread():
    job = long_job(orphan_after_s=None).start()
    assert wait_until(lambda: job.snapshot().step >= 2)
    job.stop()
    assert job.join(timeout=60)
    assert job.snapshot().state == "stopped" and not job._thread.is_alive()
    out = job.model(blobs(2).float() / 255)
    assert out.shape == (2, 1, 28, 28) and torch.isfinite(out).all()
    assert TrainingJob.active_count() == 0


def test_a_job_nobody_watches_stops_itself():
    """The browser tab closed: no heartbeat arrives, the thread must not train forever."""
    job = long_job(orphan_after_s=0.5).start()
    assert job.join(timeout=60), "an orphaned job kept training"
    snap = job.snapshot()
    assert snap.state == "stopped" and job.orphaned and not job._thread.is_alive()
    assert torch.isfinite(job.model(blobs(1).float() / 255)).all()
    assert TrainingJob.active_count() == 0


@pytest.mark.slow
def test_heartbeats_keep_a_watched_job_running():
    job = long_job(orphan_after_s=0.5).start()
    try:
        start = time.monotonic()
        while time.monotonic() - start < 2.0:  # four times the orphan limit
            job.heartbeat()  # what the page's polling fragment does
            time.sleep(0.05)
        assert not job.snapshot().finished and not job.orphaned
    finally:
        job.stop()
        job.join(timeout=60)
    assert TrainingJob.active_count() == 0


def test_many_start_stop_cycles_leave_no_threads_behind():
    baseline = threading.active_count()
    for i in range(15):
        job = long_job(orphan_after_s=None).start()
        if i % 3:
            wait_until(lambda job=job: job.snapshot().step >= 1)
        job.stop()
        assert job.join(timeout=60)
    assert wait_until(lambda: threading.active_count() <= baseline, timeout=30), [
        t.name for t in threading.enumerate()
    ]
    assert TrainingJob.active_count() == 0


def test_a_room_pressing_start_at_once_runs_no_more_than_the_limit_and_queues_the_rest():
    """16 people pressing Start in the same instant: 2 train, 14 wait (none is refused,
    none slips past the limit), each with its own place."""
    queue = TrainingQueue(max_running=2, max_waiting=20)
    barrier = threading.Barrier(16)
    places = []

    def press(i):
        job = long_job(orphan_after_s=None)
        barrier.wait(timeout=30)
        places.append(queue.submit(f"student-{i}", job))

    threads = [threading.Thread(target=press, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert queue.counts() == (2, 14) and TrainingJob.active_count() == 2
        now = [queue.place(f"student-{i}") for i in range(16)]
        assert sum(p.running for p in now) == 2
        assert sorted(p.position for p in now if not p.running) == list(range(1, 15))
    finally:
        queue.close()
    assert wait_until(lambda: TrainingJob.active_count() == 0)


SAVER = r"""
import os, sys
import torch
torch.set_num_threads(1)  # the forked children then never touch an OpenMP pool
from convae import ModelConfig, build_model
from convae.nn.checkpoint import save_checkpoint
path = sys.argv[1]
models = [build_model(ModelConfig(a), seed=0) for a in ("conv-upsample", "linear")]
pad = b"\0" * 1_000_000  # a longer write: more kills land in the middle of one
save_checkpoint(path, models[0], {"i": -1})
print("ready", flush=True)
child = None
for line in sys.stdin:  # one line per round: fork a saver, report its pid
    if child:
        os.waitpid(child, 0)  # the test killed it
    child = os.fork()
    if child == 0:
        i = 0
        while True:
            save_checkpoint(path, models[i % 2], {"i": i, "pad": pad})
            i += 1
    print(child, flush=True)
"""


@pytest.mark.slow
def test_a_checkpoint_save_killed_at_random_moments_never_leaves_a_broken_file(
    tmp_path, monkeypatch
):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    path = folder / "target.pt"
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path)],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    rng = random.Random(1)
    seen = set()
    try:
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(6):
            proc.stdin.write("go\n")
            proc.stdin.flush()
            pid = int(proc.stdout.readline())
            time.sleep(rng.uniform(0.02, 0.4))  # a random moment, not a wait
            os.kill(pid, signal.SIGKILL)
            ckpt = load_checkpoint(path)  # always whole: the old file or the new one
            assert ckpt.config.arch in ("conv-upsample", "linear")
            seen.add(ckpt.meta["i"])
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait(timeout=30)
    assert len(seen) > 1  # the file was being replaced while the kills came
    leftovers = [p.name for p in folder.iterdir() if p.name != "target.pt"]
    assert all(n.startswith(".target.pt.") and n.endswith(".tmp") for n in leftovers)

    # what lists checkpoints in the sidebar never offers a leftover (or any dot file)
    (folder / ".half-written.pt").write_bytes(b"")
    monkeypatch.setenv("CONVAE_CHECKPOINT_DIR", str(folder))
    from ui import catalogue

    assert [e.file for e in catalogue.file_entries()] == ["target.pt"]
    # and stale temporaries are cleaned (save_checkpoint does it for older than 10 min)
    removed = remove_stale_temporaries(folder, older_than_s=0)
    assert sorted(p.name for p in removed) == sorted(leftovers)
    assert sorted(p.name for p in folder.iterdir()) == [".half-written.pt", "target.pt"]


# ================================================================= 5. server settings
def test_server_settings_bound_uploads_and_stay_quiet():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server, browser = config["server"], config["browser"]
    assert 1 <= server["maxUploadSize"] <= 20  # MB; convae files are < 1 MB
    assert server["fileWatcherType"] == "none"  # torch's modules would flood the watcher
    assert server["enableXsrfProtection"] is True
    assert browser["gatherUsageStats"] is False
    assert server.get("runOnSave", False) is False
    # a full gc.collect(2) after every run was half the server's CPU with 8 users
    assert config["runner"]["postScriptGC"] is False
    assert config["client"]["showErrorDetails"] in ("type", "none")  # never a traceback
