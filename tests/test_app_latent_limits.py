"""The latent page's decoding controls and the "What it cannot reconstruct" page, driven
in-process with AppTest: every control changes what the page shows.

Models: the shipped MNIST conv-upsample and conv-2d checkpoints, copied with their index
entries into a temporary folder (the tests save nothing, and the figures these pages
show only mean something for trained models).
"""

from __future__ import annotations

import io
import shutil

import pytest
from support import REPO, app_environment, assert_clean, new_app

from convae.nn.zoo import read_index, write_index

MODELS = ("mnist-conv-upsample.pt", "mnist-conv-2d.pt")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, data_root, fashion_root):
    folder = tmp_path_factory.mktemp("checkpoints")
    entries = [e for e in read_index(REPO / "checkpoints") if e["file"] in MODELS]
    assert sorted(e["file"] for e in entries) == sorted(MODELS)
    for e in entries:
        shutil.copy(REPO / "checkpoints" / e["file"], folder / e["file"])
    write_index(entries, folder)
    with app_environment(data_root, folder):
        yield folder


def image_urls(at) -> list[str]:
    return [url for img in at.get("image") for url in img.value]


def captions(at) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


def texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption") for e in at.get(kind))


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


# --------------------------------------------------------------------------- latent
def test_typing_a_map_point_decodes_it_and_the_grid_controls_change_the_mosaic(shipped):
    at = new_app("app_pages/latent.py")
    assert "decoded at (0.00, 0.00)" in captions(at)
    assert "click to decode" in at.get("plotly_chart")[0].proto.spec  # the empty space
    before = image_urls(at)
    at.number_input(key="latent_x").set_value(6.0).run()
    assert_clean(at)
    assert "decoded at (6.00, 0.00)" in captions(at)
    assert image_urls(at) != before

    mosaic = [c for c in captions(at) if c.startswith("The decoder's image")]
    assert mosaic and "12x12 tiles" in mosaic[0]
    urls = image_urls(at)
    at.slider(key="latent_grid").set_value(6).run()
    assert_clean(at)
    assert any("6x6 tiles" in c for c in captions(at))
    assert "of the 36 tiles" in texts(at)
    assert image_urls(at) != urls
    urls = image_urls(at)
    at.checkbox(key="latent_frame").uncheck().run()
    assert_clean(at)
    assert image_urls(at) != urls  # the same decodings without the red frames


def test_a_click_on_a_test_images_point_shows_it_beside_both_decodings(shipped):
    """The state the chart's click leaves (its callback copies the clicked point and the
    image it hit into these keys; AppTest cannot click a plotly chart)."""
    at = new_app("app_pages/latent.py")
    at.session_state["latent_x"] = 1.25
    at.session_state["latent_y"] = -0.5
    at.session_state["latent_hit"] = 3
    at.run()
    assert_clean(at)
    shown = captions(at)
    assert "#3 (0 - zero)" in shown
    assert {"from its full code", "from its map point"} <= set(shown)
    at.number_input(key="latent_x").set_value(2.0).run()  # typing leaves the image
    assert_clean(at)
    assert at.session_state["latent_hit"] is None
    assert "decoded at (2.00, -0.50)" in captions(at)


def test_for_the_two_value_model_the_map_is_the_code(shipped):
    at = new_app("app_pages/latent.py")
    at.selectbox(key="arch").set_value("conv-2d").run()
    assert_clean(at)
    assert at.session_state["model_id"] == "file:mnist-conv-2d.pt"
    spec = at.get("plotly_chart")[0].proto.spec
    assert "code value 1" in spec and "PC 1" not in spec
    assert "the point *is* the code" in texts(at)
    assert metrics(at)["Variance shown by the map"] == "100%"
    assert "each a 2-value code, drawn at their two values" in texts(at)


def test_a_hostile_map_point_in_a_link_is_refused(shipped):
    at = new_app()
    at.query_params["latent_x"] = "nan"
    at.query_params["latent_y"] = "1e308"
    at.switch_page("app_pages/latent.py").run()
    assert_clean(at)
    assert "decoded at (0.00, 0.00)" in captions(at)


# --------------------------------------------------------------------------- limits
def test_the_worst_images_and_the_threshold_slider_change_the_figures(shipped):
    at = new_app("app_pages/limits.py")
    first = metrics(at)
    assert set(first) >= {"Typical error (median)", "Detected", "False alarms", "ROC AUC"}
    assert first["False alarms"] == "5.0%"  # the 95th percentile of the test errors
    assert float(first["ROC AUC"]) > 0.9  # clothes are no digits to an MNIST model
    worst_caption = next(c.value for c in at.caption if c.value.startswith("Worst first"))
    assert worst_caption.count("#") == 8

    at.slider(key="limits_pct").set_value(99.0).run()
    assert_clean(at)
    now = metrics(at)
    assert now["False alarms"] == "1.0%"
    assert now["Detected"] != first["Detected"] and now["ROC AUC"] == first["ROC AUC"]

    at.slider(key="limits_worst").set_value(4).run()
    assert_clean(at)
    worst_caption = next(c.value for c in at.caption if c.value.startswith("Worst first"))
    assert worst_caption.count("#") == 4


def unknown_group(at) -> str:
    """The second histogram's unknown group, as its legend names it."""
    import json

    spec = json.loads(at.get("plotly_chart")[1].proto.spec)
    return spec["data"][1]["name"]


def test_each_kind_of_unknown_images_gets_its_own_separation(shipped):
    at = new_app("app_pages/limits.py")
    assert unknown_group(at) == "Fashion-MNIST (clothes): test images (500)"
    auc = {"fashion-mnist": float(metrics(at)["ROC AUC"])}
    at.selectbox(key="limits_source").set_value("noise").run()
    assert_clean(at)
    assert unknown_group(at) == "MNIST (handwritten digits) test images with noise (500)"
    auc["noise 0.3"] = float(metrics(at)["ROC AUC"])
    at.slider(key="limits_level").set_value(0.05).run()
    assert_clean(at)
    auc["noise 0.05"] = float(metrics(at)["ROC AUC"])
    assert auc["noise 0.05"] < auc["noise 0.3"] - 0.1  # faint noise hides better
    at.selectbox(key="limits_source").set_value("random").run()
    assert_clean(at)
    assert unknown_group(at) == "Random pixels (500)"
    assert float(metrics(at)["ROC AUC"]) > 0.99 and auc["fashion-mnist"] > 0.9


def test_uploaded_pictures_get_their_error_and_a_verdict(shipped):
    from PIL import Image

    def png(image) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()

    at = new_app("app_pages/limits.py")
    at.selectbox(key="limits_source").set_value("upload").run()
    assert_clean(at)
    assert "Upload one or more pictures" in "\n".join(i.value for i in at.info)
    stripes = Image.new("L", (28, 28))
    stripes.putdata([255 * ((i // 2) % 2) for i in range(28 * 28)])
    at.get("file_uploader")[0].set_value(
        [("stripes.png", png(stripes), "image/png"), ("notes.png", b"no picture", "image/png")]
    )
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "notes.png: the file is not a picture Pillow can read; upload a PNG or JPEG"
    ]
    table = at.dataframe[0].value
    assert list(table["picture"]) == ["stripes.png"] and list(table["flagged"]) == ["yes"]
    assert metrics(at)["Detected"] == "100%"
