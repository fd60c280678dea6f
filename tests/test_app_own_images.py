"""The app on colour data and on a visitor's own pictures, driven in-process with
AppTest: CIFAR-10 read from its PNG copy, and a zipped image folder uploaded in the
sidebar (a good one on every page, a training on it, and every hostile zip refused).

Needs MNIST (skips without it, fails when ``$CI`` is set). Checkpoints: one untrained
MNIST model in a temporary folder, so that the sidebar has a shipped model to leave out.
"""

from __future__ import annotations

import pytest
from hostile import folder_pictures, hostile_zips, zipped
from support import app_environment, assert_clean, new_app, train_quickly

from convae import ModelConfig, build_model

PAGES = [
    "app_pages/home.py",
    "app_pages/explore.py",
    "app_pages/activations.py",
    "app_pages/compare.py",
    "app_pages/latent.py",
    "app_pages/limits.py",
    "app_pages/train.py",
]


@pytest.fixture(scope="module")
def app_env(tmp_path_factory, data_root):
    from convae.nn.checkpoint import save_checkpoint
    from convae.nn.zoo import write_index

    folder = tmp_path_factory.mktemp("checkpoints")
    save_checkpoint(
        folder / "mnist-conv-upsample.pt",
        build_model(ModelConfig("conv-upsample"), seed=0),
        {"dataset": "mnist"},
    )
    entry = {"file": "mnist-conv-upsample.pt", "arch": "conv-upsample", "dataset": "mnist"}
    write_index([{**entry, "train_noise": "none", "metrics": {}}], folder)
    with app_environment(data_root, folder):
        yield folder


def texts(at) -> str:
    kinds = ("markdown", "caption", "success", "info", "warning", "error")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


def zip_uploader(at):
    (up,) = [u for u in at.sidebar.get("file_uploader") if "zip" in u.proto.label]
    return up


def upload_zip(at, name: str, data: bytes):
    zip_uploader(at).upload(name, data).run()
    return at


@pytest.mark.slow
# ------------------------------------------------------------------ CIFAR-10 PNG
def test_every_page_renders_cifar10_read_from_its_png_copy(app_env, tmp_path, monkeypatch):
    from cifar_files import CIFAR_CLASSES, png_colour_data_folder

    from convae import load_dataset

    png_colour_data_folder(tmp_path, monkeypatch)
    at = new_app()
    at.selectbox(key="dataset").set_value("cifar10").run()
    assert_clean(at)
    assert "code: 256 values = 8% of the 3072-value input" in texts(at.sidebar)
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)
    test = load_dataset("cifar10", train=False)
    assert "PNG copy" in test.source and test.classes == tuple(CIFAR_CLASSES)
    assert len(test) == 30  # what the pages showed: the PNG copy, not another CIFAR-10


# ------------------------------------------------------------------ a good zip
def test_an_uploaded_zip_becomes_the_dataset_and_every_page_renders_on_it(app_env):
    at = new_app()
    assert any("Pretrained" in o for o in at.selectbox(key="model_id").options)
    # grey pictures: colour ones are the CIFAR-10 test's (the classical filters' search
    # on colour makes every page three times slower)
    upload_zip(at, "my class.zip", zipped(folder_pictures(colour=False), top="my class"))
    assert_clean(at)
    dataset = at.session_state["dataset"]
    assert dataset.startswith("upload:")
    label = at.selectbox(key="dataset").format_func(dataset)
    assert "my class.zip (2 classes, 16 images, 1x28x28)" in label
    assert "Taken:" in texts(at.sidebar) and "a link cannot carry it" in texts(at.sidebar)
    # no shipped model applies to these pictures: only untrained ones are offered
    options = at.selectbox(key="model_id").options
    assert options and all("Untrained" in o for o in options)
    assert "no pretrained model knows them" in texts(at.sidebar)
    assert "dataset" not in at.query_params  # a link cannot carry the upload
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)
    at.switch_page("app_pages/home.py").run()
    assert "folder:my_pictures" in "\n".join(c.value for c in at.code)
    # back to a server dataset and again to the upload: still there, this session
    at.selectbox(key="dataset").set_value("mnist").run()
    assert_clean(at)
    at.selectbox(key="dataset").set_value(dataset).run()
    assert_clean(at)


@pytest.mark.slow
def test_a_model_trained_on_uploaded_pictures_becomes_the_current_model(app_env):
    at = upload_zip(new_app(), "shapes.zip", zipped(folder_pictures(train=10, test=3)))
    dataset = at.session_state["dataset"]
    at.switch_page("app_pages/train.py").run()
    assert at.selectbox(key="train_dataset").value == dataset
    job = train_quickly(at)
    assert at.session_state["model_id"] == "session:1"
    assert at.session_state["dataset"] == dataset
    assert job.meta["dataset"] == dataset and job.n_train == 20
    at.switch_page("app_pages/explore.py").run()
    assert_clean(at)


def test_a_second_zip_replaces_the_first(app_env):
    at = upload_zip(new_app(), "one.zip", zipped(folder_pictures()))
    first = at.session_state["dataset"]
    grey = zipped(folder_pictures(classes=("a", "b", "c"), colour=False))
    upload_zip(at, "two.zip", grey)
    assert_clean(at)
    second = at.session_state["dataset"]
    options = at.selectbox(key="dataset").options  # the labels
    assert second != first and not any("one.zip" in o for o in options)
    assert any("two.zip (3 classes, 24 images, 1x28x28)" in o for o in options)


# --------------------------------------------------------------- hostile zips
@pytest.mark.parametrize("name", list(hostile_zips()))
def test_every_hostile_zip_is_refused_with_a_message_and_changes_nothing(app_env, name):
    data, reason = hostile_zips()[name]
    at = new_app()
    upload_zip(at, name, data)
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("Not taken: ") and reason in errors[0]
    assert at.session_state["dataset"] == "mnist"
    assert not any("Your images" in o for o in at.selectbox(key="dataset").options)
