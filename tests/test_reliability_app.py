"""The app itself under hostile uploads, a running job and broken data folders, driven
in-process with Streamlit's AppTest (which drives ``st.file_uploader`` in this version).

Needs MNIST (skips without it, fails when ``$CI`` is set). Checkpoints: one quick model
in a temporary folder; the project's ``checkpoints/`` is never read or written.
"""

from __future__ import annotations

import stat

import pytest
from hostile import MNIST_FILE, good_images, hostile_checkpoints, hostile_images
from support import app_environment, copy_mnist, new_app, tree_snapshot

from convae import ModelConfig, build_model
from convae.classroom.jobs import TrainingJob
from convae.nn.checkpoint import to_bytes


@pytest.fixture(scope="module")
def app_env(tmp_path_factory, data_root):
    """MNIST, a checkpoint folder with one quick model (untrained weights are a valid
    checkpoint), and CONVAE_DEBUG so that any bug the app catches is re-raised."""
    from convae.nn.checkpoint import save_checkpoint
    from convae.nn.zoo import write_index

    folder = tmp_path_factory.mktemp("checkpoints")
    model = build_model(ModelConfig("conv-upsample"), seed=0)
    save_checkpoint(folder / "mnist-conv-upsample.pt", model, {"dataset": "mnist"})
    write_index(
        [
            {
                "file": "mnist-conv-upsample.pt",
                "arch": "conv-upsample",
                "dataset": "mnist",
                "train_noise": "none",
                "metrics": {},
            }
        ],
        folder,
    )
    with app_environment(data_root, folder):
        yield folder


def test_sidebar_refuses_every_hostile_checkpoint_and_keeps_the_model(app_env, tmp_path):
    marker = tmp_path / "MARKER"
    at = new_app()
    before = (at.session_state["dataset"], at.session_state["arch"], at.session_state["model_id"])
    assert before[2] == "file:mnist-conv-upsample.pt"
    for name, data in hostile_checkpoints(marker).items():
        at.sidebar.get("file_uploader")[0].upload(name, data).run()
        assert not at.exception, (name, [e.value for e in at.exception])
        errors = [e.value for e in at.sidebar.error]
        assert any(e.startswith(f"{name} was not loaded: ") for e in errors), (name, errors)
        assert (
            at.session_state["dataset"],
            at.session_state["arch"],
            at.session_state["model_id"],
        ) == before, name
        assert not at.session_state["session_models"], name
        assert not marker.exists(), f"{name} ran code"
    # a valid checkpoint of another architecture is the one upload that is taken
    other = to_bytes(build_model(ModelConfig("conv-deep"), seed=1), {"dataset": "mnist"})
    at.sidebar.get("file_uploader")[0].upload("friend.pt", other).run()
    assert not at.exception and not at.error
    assert at.session_state["arch"] == "conv-deep"


def test_explore_page_reports_each_bad_picture_and_shows_the_good_ones(app_env):
    at = new_app("app_pages/explore.py")
    at.selectbox(key="explore_source").set_value("Upload your own").run()
    bad, good = hostile_images(), good_images()
    upload = [(n, d, "image/png") for n, d in [*bad.items(), *good.items()]]
    assert len(upload) > 16
    at.get("file_uploader")[0].set_value(upload).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert sorted(e.split(": ", 1)[0] for e in errors) == sorted(bad), errors
    # at most 16 are decoded (on every full rerun), and the page says so
    assert any(f"first 16 of the {len(upload)} pictures" in w.value for w in at.warning)
    shown = list(at.dataframe[0].value.columns)
    assert shown == [n for n, *_ in upload[:16] if n in good]


def test_the_page_heartbeat_reaches_a_running_job(app_env):
    at = new_app("app_pages/train.py")
    at.select_slider(key="train_limit").set_value(60000)
    at.slider(key="train_epochs").set_value(20)
    at.button(key="train_start").click().run()
    job = at.session_state["job"]
    try:
        beat = job._last_beat
        at.run()  # a rerun (and every poll of the sidebar's status fragment) beats
        assert job._last_beat > beat
    finally:
        job.stop()
        job.join(timeout=60)
    assert TrainingJob.active_count() == 0


# ========================================================================== 6. data
def test_a_read_only_data_folder_is_used_and_never_changed(
    app_env, data_root, tmp_path, monkeypatch
):
    data = copy_mnist(data_root, tmp_path / "data")
    for p in [*data.rglob("*"), data]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = tree_snapshot(data)
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data))
    at = new_app("app_pages/explore.py")
    assert not at.error, [e.value for e in at.error]
    assert at.metric  # the page measured the model on the data
    assert tree_snapshot(data) == before


def test_a_missing_data_folder_is_named_on_the_page(app_env, tmp_path, monkeypatch, offline):
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv("CONVAE_DATA_DIR", str(missing))
    at = new_app("app_pages/explore.py")  # MNIST: the bundled copy, so no error at all
    assert at.get("image") and not at.error
    at.selectbox(key="dataset").set_value("fashion-mnist").run()
    errors = " ".join(e.value for e in at.error)
    assert "is not on this server" in errors and str(missing) in errors


def test_a_damaged_dataset_file_is_named_and_nothing_is_deleted(
    app_env, data_root, tmp_path, monkeypatch, offline
):
    data = copy_mnist(data_root, tmp_path / "data")
    damaged = data / MNIST_FILE
    raw = damaged.read_bytes()
    damaged.write_bytes(raw[: len(raw) // 2])
    before = tree_snapshot(data)
    monkeypatch.setenv("CONVAE_DATA_DIR", str(data))
    at = new_app("app_pages/explore.py", clean=False)  # the error is the point
    errors = " ".join(e.value for e in at.error)
    assert "t10k-images-idx3-ubyte.gz is not the official file" in errors, errors
    assert str(data) in errors
    assert tree_snapshot(data) == before
