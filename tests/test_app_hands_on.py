"""The hands-on views, driven in-process with AppTest on the shipped models: drawing a
digit (Denoise & explore, Activations), the learned filters, and the model as code.

AppTest cannot move a mouse on the drawing pad; it puts the pad's value (the PNG the
browser sends) into the session state, which is what the pad's message from the browser
does. ``tests/test_browser.py`` draws with a real mouse.
"""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image, ImageDraw
from support import REPO, app_environment, assert_clean, new_app

from convae.data.drawing import PNG_DATA_URL


@pytest.fixture(scope="module")
def shipped(data_root):
    """The app on MNIST with the project's own checkpoints (read, never written)."""
    with app_environment(data_root, REPO / "checkpoints"):
        yield REPO / "checkpoints"


def pad_value(draw=None, strokes=()) -> dict:
    """What the pad sends: its picture as a PNG data URL, and its strokes."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    if draw:
        draw(ImageDraw.Draw(img))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    url = PNG_DATA_URL + base64.b64encode(buf.getvalue()).decode()
    raw = {"objects": list(strokes)}
    return {"drawing": {"raw": raw, "data": url}, "backgroundFit": None}


def one(d):
    d.line([(140, 40), (140, 240)], fill="white", width=20)


def zero(d):
    d.ellipse((70, 40, 210, 240), outline="white", width=20)


def image_urls(at) -> list[str]:
    return [url for img in at.get("image") for url in img.value]


def captions(at) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


def infos(at) -> str:
    return "\n".join(e.value for e in at.info)


# ------------------------------------------------------------------------ drawing
def test_explore_a_drawing_is_denoised_like_any_image_and_a_new_one_changes_it(shipped):
    at = new_app("app_pages/explore.py")
    at.selectbox(key="explore_source").set_value("Draw your own").run()
    assert_clean(at)
    assert "Nothing drawn yet" in infos(at)
    assert not at.metric  # no model output without a drawing
    at.session_state["explore_pad"] = pad_value(one)
    at.run()
    assert_clean(at)
    assert "what the model gets (28x28)" in captions(at)
    assert list(at.dataframe[0].value.columns) == ["drawing"]
    noisy = {m.label: m.value for m in at.metric}["Noisy input: PSNR"]
    urls = image_urls(at)
    at.session_state["explore_pad"] = pad_value(zero)
    at.run()
    assert_clean(at)
    assert image_urls(at) != urls
    assert {m.label: m.value for m in at.metric}["Noisy input: PSNR"] != noisy
    # noise applies to the drawing as to any image
    urls = image_urls(at)
    at.slider(key="explore_level").set_value(0.7).run()
    assert_clean(at)
    assert image_urls(at) != urls


def test_explore_an_empty_or_broken_drawing_is_a_message_not_an_error(shipped):
    at = new_app("app_pages/explore.py")
    at.selectbox(key="explore_source").set_value("Draw your own").run()
    at.session_state["explore_pad"] = pad_value()  # cleared: all black
    at.run()
    assert_clean(at)
    assert "The pad is empty" in infos(at)
    at.session_state["explore_pad"] = {
        "drawing": {"raw": None, "data": PNG_DATA_URL + "bm90IGEgcGljdHVyZQ=="},
        "backgroundFit": None,
    }
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "This drawing cannot be used: the drawing's picture is damaged (UnidentifiedImageError)."
    ]
    at.session_state["explore_pad"] = {"drawing": [1, 2]}  # not what any pad sends
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The drawing pad sent something unreadable: clear it and draw again."
    ]


def test_undo_and_clear_give_the_pad_a_new_starting_drawing(shipped):
    """The buttons under the pad (its own toolbar needs a hovering mouse): undo hands
    the pad its strokes but the last, clear none; the pad then redraws and sends its
    picture (the browser test sees that). Whatever is not a stroke is never sent back."""
    a = {"type": "Path", "path": [["M", 10, 10], ["L", 90, 90]]}
    b = {"type": "Path", "path": [["M", 90, 10], ["L", 10, 90]]}
    foreign = {"type": "Image", "src": "https://example.com/x.png"}
    at = new_app("app_pages/explore.py")
    at.selectbox(key="explore_source").set_value("Draw your own").run()
    at.session_state["explore_pad"] = pad_value(one, [a, foreign, b])
    at.run()
    at.button(key="explore_pad_undo").click().run()
    assert_clean(at)
    first = at.session_state["pad_drawings"]["explore_pad"]
    assert first["objects"] == [a]
    at.button(key="explore_pad_clear").click().run()
    assert_clean(at)
    cleared = at.session_state["pad_drawings"]["explore_pad"]
    assert cleared["objects"] == [] and cleared["revision"] == first["revision"] + 1
    at.button(key="explore_pad_clear").click().run()  # again: still a change for the pad
    assert at.session_state["pad_drawings"]["explore_pad"]["revision"] == first["revision"] + 2
    at.session_state["explore_pad"] = {"drawing": {"raw": {"objects": "garbage"}, "data": None}}
    at.run()
    at.button(key="explore_pad_undo").click().run()
    assert_clean(at)
    assert at.session_state["pad_drawings"]["explore_pad"]["objects"] == []


def test_activations_follow_a_drawing_through_the_network(shipped):
    at = new_app("app_pages/activations.py")
    strip = at.get("plotly_chart")[0].proto.spec
    at.radio(key="act_source").set_value("Your drawing").run()
    assert_clean(at)
    assert "Nothing drawn yet" in infos(at)
    at.session_state["act_pad"] = pad_value(one)
    at.run()
    assert_clean(at)
    assert "The journey of your drawing" in [h.value for h in at.subheader]
    drawn = at.get("plotly_chart")[0].proto.spec
    assert drawn != strip
    at.session_state["act_pad"] = pad_value(zero)
    at.run()
    assert_clean(at)
    assert at.get("plotly_chart")[0].proto.spec != drawn


# ------------------------------------------------------------------------ filters
def filter_specs(at) -> list[str]:
    return [
        c.proto.spec
        for c in at.get("plotly_chart")
        if '"RdBu' in c.proto.spec or "rgb(5,48,97)" in c.proto.spec
    ]


def test_filters_layer_choice_and_shared_scale_change_the_pictures(shipped):
    at = new_app("app_pages/activations.py")
    assert at.selectbox(key="act_filter_layer").value == "encoder.conv1"
    assert [m.value for m in at.markdown if m.value.startswith("**")][-2:] == [
        "**This model: mnist-conv-upsample.pt**",
        "**The same architecture, untrained (random start)**",
    ]
    kernels = filter_specs(at)
    assert len(kernels) == 2  # the shipped model and its untrained twin
    hist = at.get("plotly_chart")[-1].proto.spec
    assert "this model" in hist and "untrained" in hist
    at.selectbox(key="act_filter_layer").set_value("encoder.conv2").run()
    assert_clean(at)
    assert filter_specs(at) != kernels
    assert at.get("plotly_chart")[-1].proto.spec != hist
    assert "One row per feature map this layer makes (4)" in "\n".join(c.value for c in at.caption)
    scales = [c.value for c in at.caption if "colour scale" in c.value]
    at.toggle(key="act_filter_same").set_value(True).run()
    assert_clean(at)
    shared = [c.value for c in at.caption if "colour scale" in c.value]
    assert shared != scales
    assert shared[0].split("colour scale")[1] == shared[1].split("colour scale")[1]


def test_filters_of_an_untrained_model_stand_alone_and_linear_units_are_pictures(shipped):
    at = new_app("app_pages/activations.py")
    at.selectbox(key="arch").set_value("linear").run()
    assert_clean(at)
    # a shipped linear model: its 32 units over the whole image
    assert at.selectbox(key="act_filter_layer").value == "encoder.fc1"
    assert "32 filters of 1x28x28" in at.selectbox(key="act_filter_layer").format_func(
        "encoder.fc1"
    )
    assert '"unit 31"' in filter_specs(at)[0]
    at.selectbox(key="model_id").set_value("untrained:linear").run()
    assert_clean(at)
    assert len(filter_specs(at)) == 1
    assert at.toggle(key="act_filter_same").proto.disabled
    assert "This model is untrained" in "\n".join(c.value for c in at.caption)


def test_on_colour_data_the_first_layers_filters_are_colour_pictures(
    shipped, tmp_path, monkeypatch
):
    from cifar_files import colour_data_folder

    colour_data_folder(tmp_path, monkeypatch)
    at = new_app("app_pages/activations.py")
    at.selectbox(key="dataset").set_value("cifar10").run()
    assert_clean(at)
    assert "16 filters of 3x3x3" in at.selectbox(key="act_filter_layer").format_func(
        "encoder.conv1"
    )
    assert not filter_specs(at)  # colour pictures, not heatmaps
    assert any("mid-grey = 0" in c.value for c in at.caption)
    at.selectbox(key="act_filter_layer").set_value("encoder.conv2").run()
    assert_clean(at)
    # the shipped CIFAR-10 model is the current one: its filters beside the untrained ones
    assert len(filter_specs(at)) == 2


# -------------------------------------------------------------------- model as code
def codes(at) -> list[str]:
    return [c.value for c in at.code]


def test_home_shows_the_model_as_code_and_the_lines_that_load_it(shipped):
    at = new_app()
    printed, plain, load = codes(at)
    assert printed.startswith("Autoencoder(") and "(conv1): Conv2d(1, 16" in printed
    assert '("conv1", nn.Conv2d(1, 16' in plain
    assert 'torch.load("mnist-conv-upsample.pt", weights_only=True)' in plain
    assert 'resolve_path("mnist-conv-upsample")' in load
    assert at.get("download_button")  # the weights, for the plain-PyTorch route
    at.selectbox(key="arch").set_value("conv-bn").run()
    assert_clean(at)
    printed_bn, plain_bn, load_bn = codes(at)
    assert "BatchNorm2d" in printed_bn and printed_bn != printed
    assert '("bn1", nn.BatchNorm2d(16' in plain_bn
    assert 'resolve_path("mnist-conv-bn")' in load_bn
    at.selectbox(key="model_id").set_value("untrained:conv-bn").run()
    assert_clean(at)
    _, plain_u, load_u = codes(at)
    assert 'build_model(ModelConfig("conv-bn", (1, 28, 28)), seed=0)' in load_u
    assert "torch.load" not in plain_u  # nothing to download: the seed rebuilds it
    assert not at.get("download_button")
