"""Every page of the app, driven in-process with Streamlit's AppTest.

Each page must render without an exception or an error message, and a widget change
must change what it shows. A tiny training run must finish and become the current
model. The data come from ``$CONVAE_DATA_DIR`` (else ``../shared/datasets``); without
MNIST these tests are skipped, except when ``$CI`` is set, where they fail.

Checkpoints: two tiny models (a few seconds of training) in a temporary folder, so the
tests neither need nor touch the project's ``checkpoints/``.
"""

from __future__ import annotations

import socket

import pytest
from support import REPO, app_environment, assert_clean, copy_mnist, new_app, train_quickly


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, data_root):
    """App environment: data, a checkpoint folder with two tiny models, debug errors."""
    from convae import ModelConfig, TrainConfig, build_model, evaluate, load_dataset, train
    from convae.nn.checkpoint import save_checkpoint
    from convae.nn.zoo import read_baselines, write_index

    folder = tmp_path_factory.mktemp("checkpoints")
    train_set = load_dataset("mnist", train=True, root=data_root)
    test_set = load_dataset("mnist", train=False, root=data_root)
    entries = []
    for arch in ("conv-upsample", "conv-transpose"):
        model = build_model(ModelConfig(arch), seed=0)
        cfg = TrainConfig(epochs=1, limit=256, lr=5e-3)
        history = train(model, train_set.images, cfg)
        metrics = {"clean": evaluate(model, test_set.images[:200]).to_dict()}
        meta = {
            "dataset": "mnist",
            "train_noise": "none",
            "train": cfg.to_dict(),
            "metrics": metrics,
            "history": history.to_dict(),
            "test_images": 200,
        }
        save_checkpoint(folder / f"mnist-{arch}.pt", model, meta)
        entries.append(
            {
                "file": f"mnist-{arch}.pt",
                "arch": arch,
                "dataset": "mnist",
                "train_noise": "none",
                "latent_size": 196,
                "params": model.num_params,
                "epochs": 1,
                "test_images": 200,
                "metrics": metrics,
            }
        )
    # the shipped baselines (strengths and classical curves): the pages read them there,
    # as they do on a server, instead of measuring them in every test process
    write_index(entries, folder, read_baselines(REPO / "checkpoints"))
    with app_environment(data_root, folder):
        yield folder


def image_urls(at) -> list[str]:
    """Media URLs of every picture; they are content hashes, so new pixels, new URLs."""
    return [url for img in at.get("image") for url in img.value]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(at) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "success", "info", "warning", "error")
        for e in at.get(kind)
    ]
    return "\n".join(str(p) for p in parts)


# ------------------------------------------------------------------------------ pages
def test_home_shows_the_model_and_the_slider_changes_the_picture(checkpoints):
    at = new_app()
    assert "autoencoder" in at.title[0].value
    assert metrics(at)["Code size"] == "196 values"
    table = at.dataframe[0].value
    assert list(table["layer"])[:2] == ["encoder.conv1", "encoder.relu1"]
    assert "← the code" in list(table[""])
    assert at.session_state["model_id"] == "file:mnist-conv-upsample.pt"  # pretrained first
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(c.startswith("PCA with the same 196 values") for c in captions), captions
    # a minute's training stays below PCA, and the page says so
    assert "Below PCA with the same code size" in texts(at)
    assert "architectures are kept as they define them" in texts(at)
    assert "Trained on clean images." in texts(at)
    before = image_urls(at)
    at.slider(key="home_index").set_value(7).run()
    assert_clean(at)
    assert image_urls(at) != before


def test_sidebar_architecture_change_updates_the_layer_table(checkpoints):
    at = new_app()
    at.selectbox(key="arch").set_value("linear").run()
    assert_clean(at)
    assert list(at.dataframe[0].value["layer"])[0] == "encoder.flatten"
    assert at.session_state["model_id"] == "untrained:linear"  # no pretrained linear model
    assert "No pretrained linear model" in texts(at.sidebar)
    assert metrics(at)["Code size"] == "32 values"


def test_explore_noise_slider_changes_metrics_and_images(checkpoints):
    at = new_app("app_pages/explore.py")
    assert len(at.get("plotly_chart")) == 1  # the noise sweep
    first = metrics(at)
    beside = ["PCA-196: PSNR", "median: PSNR", "TV: PSNR", "NLM: PSNR"]
    assert list(first) == ["Noisy input: PSNR", "Model output: PSNR", *beside]
    urls = image_urls(at)
    at.slider(key="explore_level").set_value(0.7).run()
    assert_clean(at)
    assert metrics(at)["Noisy input: PSNR"] != first["Noisy input: PSNR"]
    # PCA with the model's code size (196 values) and the classical filters beside it,
    # and they see the noise too
    for label in beside:
        assert metrics(at)[label] != first[label], label
    assert "trained on clean images" in texts(at)  # beside the model's numbers
    assert "non-local means" in texts(at)  # its row of pictures, beside the model's
    assert image_urls(at) != urls
    at.selectbox(key="explore_kind").set_value("salt-pepper").run()
    at.selectbox(key="explore_source").set_value("One class").run()
    at.selectbox(key="explore_class").set_value(3).run()
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table.index)[:6] == [
        "PSNR noisy (dB)",
        "PSNR model (dB)",
        "PSNR PCA-196 (dB)",
        "PSNR median 3x3 (dB)",
        "PSNR total variation (dB)",
        "PSNR non-local means (dB)",
    ]
    assert len(table.columns) == 8  # one column per image
    from convae import load_dataset

    labels = load_dataset("mnist", train=False).labels
    assert all(labels[int(col.lstrip("#"))] == 3 for col in table.columns)


def test_explore_accepts_uploaded_pictures_and_refuses_broken_ones(checkpoints):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (200, 120), (255, 255, 255, 0)).save(buf, format="PNG")
    at = new_app("app_pages/explore.py")
    at.selectbox(key="explore_source").set_value("Upload your own").run()
    assert_clean(at)
    assert "Upload one or more pictures" in texts(at)
    at.get("file_uploader")[0].set_value(
        [("drawing.png", buf.getvalue(), "image/png"), ("notes.png", b"not a picture", "image/png")]
    )
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "notes.png: the file is not a picture Pillow can read; upload a PNG or JPEG"
    ]
    assert list(at.dataframe[0].value.columns) == ["drawing.png"]
    assert "Model output: PSNR" in metrics(at)


def test_activations_layer_choice_and_noise_change_the_maps(checkpoints):
    at = new_app("app_pages/activations.py")
    charts = at.get("plotly_chart")
    # the journey strip and the one-layer grid (then the learned filters, their tests apart)
    assert [c.key for c in charts][:2] == ["act_strip", "act_detail"]
    assert at.selectbox(key="act_layer").value == "encoder.pool2"  # the code first
    detail = charts[1].proto.spec
    at.selectbox(key="act_layer").set_value("encoder.conv1").run()
    assert_clean(at)
    assert "encoder.conv1" in texts(at)
    assert at.get("plotly_chart")[1].proto.spec != detail
    strip = at.get("plotly_chart")[0].proto.spec
    at.selectbox(key="act_kind").set_value("gaussian").run()
    at.slider(key="act_level").set_value(0.6).run()
    assert_clean(at)
    assert at.get("plotly_chart")[0].proto.spec != strip
    at.slider(key="act_channels_16").set_value((4, 7)).run()
    assert_clean(at)
    assert "channel 4" in at.get("plotly_chart")[1].proto.spec


def test_compare_two_decoders_table_and_checkerboard_views(checkpoints):
    at = new_app("app_pages/compare.py")
    table = at.dataframe[0].value
    assert len(table) == 2 and table["model"].str.startswith("conv-transpose").any()
    here = list(table["PSNR here (dB)"])
    at.slider(key="compare_level").set_value(0.8).run()
    assert_clean(at)
    assert list(at.dataframe[0].value["PSNR here (dB)"]) != here
    captions = [c for img in at.get("image") for c in img.captions]
    shares = {
        c.split(" — ")[0]: c.split("grid: ")[1].split("%")[0] for c in captions if "grid: " in c
    }
    assert int(shares["conv-transpose untrained"]) > 90  # the artifact, visible
    assert shares["conv-upsample untrained"] == "0"  # and absent
    # PCA with a model's code size joins like a model, measured by the same code
    chosen = at.multiselect(key="compare_models_mnist").value
    at.multiselect(key="compare_models_mnist").set_value([*chosen, "pca:196"]).run()
    assert_clean(at)
    table = at.dataframe[0].value
    pca = table[table["model"].str.startswith("pca")]
    assert len(table) == 3 and list(pca["code size"]) == [196]
    assert pca["PSNR clean, 500 test images (dB)"].item() > 27  # above every shipped 196
    # each model's gain or loss against PCA with its code size; PCA's own is 0
    vs = table["vs PCA (dB)"]
    assert pca["vs PCA (dB)"].item() == 0
    assert (vs[table["model"].str.startswith("conv")] < 0).all()
    assert list(table["trained on"]) == ["clean images", "clean images", "no training"]
    note = next(t for t in texts(at).splitlines() if "Below PCA with the same code size" in t)
    assert "conv-transpose" in note and "conv-upsample" in note and "pca" not in note
    at.multiselect(key="compare_models_mnist").set_value(["untrained:conv-bn"]).run()
    assert_clean(at)
    assert "at least two" in texts(at)


def test_latent_map_and_morph_slider(checkpoints):
    at = new_app("app_pages/latent.py")
    chart = at.get("plotly_chart")[0].proto.spec
    assert "PC 1" in chart and "test image #" in chart
    captions = [c for img in at.get("image") for c in img.captions]
    assert "decoded code at 0.50" in captions
    at.slider(key="latent_t").set_value(0.8).run()
    assert_clean(at)
    assert "decoded code at 0.80" in [c for img in at.get("image") for c in img.captions]
    at.select_slider(key="latent_n").set_value(500).run()
    assert_clean(at)
    assert "500 test images" in texts(at)


def test_train_can_be_stopped_and_the_partial_model_is_kept(checkpoints):
    at = new_app("app_pages/train.py")
    at.select_slider(key="train_limit").set_value(60000)
    at.slider(key="train_epochs").set_value(20)
    at.button(key="train_start").click().run()
    job = at.session_state["job"]
    assert not job.snapshot().finished
    at.button(key="train_stop").click().run()
    assert job.join(timeout=60) and job.snapshot().state == "stopped"
    at.run()
    assert_clean(at)
    assert "(stopped early)" in at.selectbox(key="model_id").format_func(
        at.session_state["model_id"]
    )
    assert "Stopped early" in texts(at)


@pytest.fixture
def one_trainer(monkeypatch):
    """The server's queue, trainings one at a time (as on a 2-core machine)."""
    from ui import state

    monkeypatch.setenv("CONVAE_MAX_TRAININGS", "1")
    state.training_queue.clear()
    yield state.training_queue()
    state.training_queue().close()
    state.training_queue.clear()


def test_a_second_student_waits_in_the_queue_sees_the_place_and_can_cancel(
    checkpoints, one_trainer
):
    first, second = new_app("app_pages/train.py"), new_app("app_pages/train.py")
    first.select_slider(key="train_limit").set_value(60000)
    first.slider(key="train_epochs").set_value(20)
    first.button(key="train_start").click().run()
    assert first.session_state["job"].started
    second.button(key="train_start").click().run()
    assert_clean(second)
    assert "Waiting for a free trainer**: place 1 of 1" in texts(second)
    assert "1 running, 1 waiting" in texts(second)
    assert not second.session_state["job"].started
    assert "Waiting for a trainer: place 1 of 1" in texts(second.sidebar)
    second.button(key="train_cancel").click().run()
    assert second.session_state["job"] is None
    assert "No training yet" in texts(second) and "1 running, 0 waiting" in texts(second)
    first.button(key="train_stop").click().run()
    assert first.session_state["job"].join(timeout=60)


def test_train_step_by_step_shows_each_batch_the_loss_and_a_filter_and_keeps_the_model(
    checkpoints,
):
    at = new_app("app_pages/train.py")
    assert "Press **Step** for the first optimizer step" in texts(at)
    at.button(key="step_one").click().run()
    assert_clean(at)
    assert "Step 1 (pass 1): loss" in metrics(at)
    pictures = image_urls(at)
    assert "How filter 0 of `encoder.conv1` changed" in texts(at)
    at.button(key="step_one").click().run()
    assert "Step 2 (pass 1): loss" in metrics(at)
    assert "vs the step before" in str(at.metric[0].delta)
    assert image_urls(at) != pictures  # a new batch, new reconstructions
    at.selectbox(key="step_layer").set_value("decoder.conv4").run()  # watch another filter
    assert at.session_state["stepper"].done == 2  # choosing what to watch takes no step
    at.button(key="step_one").click().run()
    assert "How filter 0 of `decoder.conv4` changed" in texts(at)
    assert "Step 3 (pass 1): loss" in metrics(at)
    at.button(key="step_keep").click().run()
    assert_clean(at)
    current = at.selectbox(key="model_id").format_func(at.session_state["model_id"])
    assert "3 step(s) by hand" in current
    at.button(key="step_reset").click().run()
    assert "Press **Step** for the first optimizer step" in texts(at)


def test_train_tiny_run_becomes_the_current_model_and_can_be_saved(checkpoints):
    at = new_app("app_pages/train.py")
    assert "No training yet" in texts(at)
    train_quickly(at)
    assert at.session_state["model_id"] == "session:1"
    assert at.selectbox(key="model_id").value == "session:1"
    assert "It is now the current model" in texts(at)
    assert "1 epoch(s) on 300 images" in at.selectbox(key="model_id").format_func("session:1")

    at.text_input(key="train_save_name").set_value("my class/demo!").run()
    at.button(key="train_save").click().run()
    assert_clean(at)
    saved = checkpoints / "my-class-demo.pt"
    assert saved.is_file()
    from convae import load_checkpoint

    assert load_checkpoint(saved).meta["dataset"] == "mnist"
    at.button(key="train_save").click().run()  # again: refused, not replaced
    assert any("already exists" in e.value for e in at.error)
    assert at.get("download_button")

    at.switch_page("app_pages/explore.py").run()  # every page now uses the trained model
    assert_clean(at)
    assert any("#1" in c.value for c in at.caption)
    saved.unlink()


@pytest.mark.slow
def test_train_a_blind_denoiser_on_every_level_up_to_the_slider(checkpoints):
    at = new_app("app_pages/train.py")
    assert at.checkbox(key="train_noise_blind").disabled  # no noise, nothing to spread
    at.selectbox(key="train_arch").set_value("denoiser-blind")
    at.selectbox(key="train_noise_kind").set_value("gaussian").run()
    at.slider(key="train_noise_level").set_value(0.6)
    at.checkbox(key="train_noise_blind").check()
    job = train_quickly(at)
    assert str(job.cfg.noise) == "gaussian:0-0.6"
    at.switch_page("app_pages/home.py").run()
    assert_clean(at)
    assert "Trained on gaussian noise of every level from 0 to 0.6." in texts(at)
    at.switch_page("app_pages/explore.py").run()
    assert_clean(at)
    assert any("every level from 0 to 0.6" in c.value for c in at.caption)


# ------------------------------------------------------------------------ failures
def test_missing_dataset_is_explained_on_every_page(checkpoints, monkeypatch, data_root, tmp_path):
    def no_network(*args, **kwargs):  # CIFAR-10 is not on disk; never try to download
        raise socket.gaierror(socket.EAI_NONAME, "network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    # a data folder with MNIST only (the usual one may hold CIFAR-10's PNG copy)
    monkeypatch.setenv("CONVAE_DATA_DIR", str(copy_mnist(data_root, tmp_path / "data")))
    at = new_app()
    at.selectbox(key="dataset").set_value("cifar10").run()
    assert not at.exception
    shown = [e.value for e in at.error if "CIFAR-10" in e.value]
    assert shown and "is not on this server" in shown[0] and "CONVAE_DATA_DIR" in shown[0]
    # short, says what to do, and never the raw exception behind it
    assert len(shown[0]) < 600 and "network disabled" not in shown[0]
    assert list(at.dataframe[0].value["output shape"])[0] == "16 x 32 x 32"  # still explained
    for page in (
        "app_pages/explore.py",
        "app_pages/activations.py",
        "app_pages/compare.py",
        "app_pages/latent.py",
        "app_pages/limits.py",
    ):
        at.switch_page(page).run()
        assert not at.exception, page
        assert any("is not on this server" in e.value for e in at.error), page


def test_bad_checkpoint_upload_changes_nothing_and_a_good_one_is_used(checkpoints):
    at = new_app()
    before = at.session_state["model_id"]
    at.sidebar.get("file_uploader")[0].upload("broken.pt", b"not a checkpoint").run()
    assert not at.exception
    assert any("broken.pt was not loaded" in e.value for e in at.sidebar.error)
    assert at.session_state["model_id"] == before

    good = (checkpoints / "mnist-conv-transpose.pt").read_bytes()
    at.sidebar.get("file_uploader")[0].set_value(("friend.pt", good, "application/octet-stream"))
    at.run()
    assert_clean(at)
    assert at.session_state["arch"] == "conv-transpose"
    assert at.session_state["model_id"].startswith("session:")
    assert "friend.pt" in at.selectbox(key="model_id").format_func(at.session_state["model_id"])


def test_without_any_checkpoint_the_untrained_model_and_training_are_offered(
    checkpoints, tmp_path, monkeypatch
):
    monkeypatch.setenv("CONVAE_CHECKPOINT_DIR", str(tmp_path / "none-here"))
    at = new_app()
    assert at.session_state["model_id"] == "untrained:conv-upsample"
    assert "No pretrained conv-upsample model" in texts(at.sidebar)
    assert "untrained" in texts(at)
    at.switch_page("app_pages/compare.py").run()
    assert_clean(at)
    assert len(at.dataframe[0].value) == 2  # the two untrained decoders


def test_a_colour_dataset_shows_its_red_green_blue_input_channels(
    checkpoints, tmp_path, monkeypatch
):
    """CIFAR-10 (generated in its own file format): the sidebar switches to it, the
    untrained model takes 3x32x32, Activations shows the input as R, G and B, and
    Explore draws colour pictures."""
    from cifar_files import colour_data_folder

    colour_data_folder(tmp_path, monkeypatch)
    at = new_app("app_pages/activations.py")
    at.selectbox(key="dataset").set_value("cifar10").run()
    assert_clean(at)
    assert "No pretrained conv-upsample model" in texts(at.sidebar)
    assert "code: 256 values = 8% of the 3072-value input" in texts(at.sidebar)  # 4x8x8
    at.selectbox(key="act_layer").set_value("input").run()
    assert_clean(at)
    grid = at.get("plotly_chart")[1].proto.spec
    assert all(f'"{c}"' in grid for c in ("R", "G", "B")) and "channel 0" not in grid
    assert "three input channels: red, green and blue" in texts(at)
    at.switch_page("app_pages/explore.py").run()
    assert_clean(at)
    assert image_urls(at)
