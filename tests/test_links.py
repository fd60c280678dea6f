"""Links that carry the view, the lesson's links, hostile query strings, and a fresh
checkout with no data folder: every page through Streamlit's AppTest.

These run on what ships with the repository (the bundled MNIST, the shipped
checkpoints), with no ``CONVAE_DATA_DIR``: exactly what a new user gets.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from ui import links, nav

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "docs" / "lesson.md"
VIEW = re.compile(r"\*\*View:\*\* `([^`]+)`")
PAGE_FILES = {"": "app_pages/home.py", **{Path(p.file).stem: p.file for p in nav.PAGES}}


@pytest.fixture
def shipped(monkeypatch):
    """What a fresh clone sees: no data folder, the repository's own checkpoints."""
    for var in ("CONVAE_DATA_DIR", "CONVAE_CHECKPOINT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CONVAE_DEBUG", "1")  # a caught bug re-raises: AppTest reports it


def open_link(view: str):
    """A new session opened on ``view`` (``/page?query``), as a browser would."""
    from streamlit.testing.v1 import AppTest

    parts = urlsplit(view)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        at.query_params[name] = value
    at.switch_page(PAGE_FILES[parts.path.strip("/")])
    return at.run()


def notices(at) -> list[str]:
    return [t.value for t in at.toast]


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def lesson_views() -> list[str]:
    return VIEW.findall(LESSON.read_text())


def test_the_lesson_has_a_view_for_each_step():
    steps = re.findall(r"^## \d+\.", LESSON.read_text(), flags=re.M)
    views = lesson_views()
    assert len(steps) == 9 and len(views) >= len(steps)
    assert {urlsplit(v).path for v in views} >= {
        "/",
        "/activations",
        "/compare",
        "/explore",
        "/latent",
        "/limits",
        "/train",
        "/board",
    }


@pytest.mark.slow  # every link of the lesson, each a fresh session
@pytest.mark.parametrize("view", lesson_views())
def test_every_lesson_view_opens_exactly_as_linked(shipped, view):
    at = open_link(view)
    assert_clean(at)
    assert not notices(at), notices(at)
    asked = dict(parse_qsl(urlsplit(view).query))
    for name, value in asked.items():
        if name == "model":
            assert at.session_state["model_id"] == f"file:{value}.pt"
        elif name in links.SIDEBAR:
            assert str(at.session_state[name]) == value, name
        else:  # a page widget took the linked value
            assert links._same(at.session_state[name], [value]), (name, value)


@pytest.mark.slow
def test_the_lesson_shows_a_tutorial_model_below_pca_and_conv_res_above_it(shipped):
    def notes(at) -> str:
        return "\n".join(str(e.value) for kind in ("info", "success") for e in at.get(kind))

    below = open_link("/?dataset=mnist&arch=conv-upsample&model=mnist-conv-upsample")
    assert "Below PCA with the same code size" in notes(below)
    above = open_link("/?dataset=mnist&arch=conv-res&model=mnist-conv-res")
    assert_clean(above)
    gain = re.search(r"Beats PCA with the same code size.*?([\d.]+) dB better", notes(above))
    assert gain and float(gain[1]) > 1, notes(above)
    assert "Below PCA" not in notes(above)
    # a code as large as the image: PCA with it is the identity, nothing to be below
    blind = open_link("/?dataset=mnist&arch=denoiser-blind&model=mnist-denoiser-blind")
    assert_clean(blind)
    assert "PCA with the same code size" not in notes(blind)


def test_a_link_sets_widgets_and_model_and_the_sidebar_writes_the_url(shipped):
    at = open_link(
        "/explore?dataset=mnist&model=mnist-conv-transpose&explore_level=0.55"
        "&explore_draw=4&explore_seed=7&explore_kind=Masking+%28dropped+pixels%29"
    )
    assert_clean(at)
    assert at.slider(key="explore_level").value == 0.55
    assert at.number_input(key="explore_draw").value == 4
    assert at.number_input(key="explore_seed").value == 7
    assert at.selectbox(key="explore_kind").value == "mask"
    assert at.session_state["arch"] == "conv-transpose"  # the model's architecture
    assert at.session_state["model_id"] == "file:mnist-conv-transpose.pt"
    assert not notices(at)
    # the same link in a second session gives the same numbers
    again = open_link(
        "/explore?dataset=mnist&model=mnist-conv-transpose&explore_level=0.55"
        "&explore_draw=4&explore_seed=7&explore_kind=Masking+%28dropped+pixels%29"
    )
    assert [m.value for m in again.metric] == [m.value for m in at.metric]
    # the sidebar keeps its part of the URL up to date
    at.selectbox(key="arch").set_value("conv-upsample").run()
    assert_clean(at)
    assert at.query_params["arch"] == "conv-upsample"
    assert at.query_params["model"] == "mnist-conv-upsample"
    at.toggle(key="present").set_value(True).run()
    assert at.query_params["present"] == "1"
    at.selectbox(key="model_id").set_value("untrained:conv-upsample").run()
    assert at.query_params["model"] == links.UNTRAINED


HOSTILE = {
    "explore_level": ["NaN", "inf", "-1e308", "1e999", "0.3<script>", "../../etc/passwd"],
    "explore_draw": ["99999999999999999999", "-5", "1.5", "<script>alert(1)</script>"],
    "explore_seed": ["x" * 5000, "%00", "1e5"],
    "explore_kind": ["<img src=x onerror=alert(1)>", "gaussian", ""],
    "explore_source": ["file:///etc/passwd"],
    "dataset": ["../../etc", "cifar100", "x" * 5000],
    "model": ["../../etc/passwd", "mnist-conv-upsample.pt/../x", "<script>"],
    "arch": ["rm -rf /", "NaN"],
    "present": ["yes please"],
    "<script>alert(1)</script>": ["1"],
    "x" * 5000: ["y" * 5000],
}


@pytest.mark.parametrize("which", range(3))
def test_hostile_query_values_are_ignored_with_a_notice_and_never_raise(shipped, which):
    query = "&".join(f"{name}={values[which % len(values)]}" for name, values in HOSTILE.items())
    at = open_link("/explore?" + query.replace("#", "%23"))
    assert_clean(at)
    assert at.session_state["dataset"] == "mnist" and at.session_state["arch"] == "conv-upsample"
    assert 0.0 <= at.slider(key="explore_level").value <= 1.0
    assert 0 <= at.number_input(key="explore_draw").value <= 10_000
    assert at.get("image")  # the page works on
    shown = notices(at)
    assert len(shown) == 1 and "not used" in shown[0]
    assert "<" not in shown[0] and len(shown[0]) < 500  # names only, cleaned and cut


@pytest.mark.slow
def test_a_fresh_checkout_renders_every_page_with_pictures_and_stays_clean(shipped):
    def status() -> str:
        return subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    before = status()
    for page in PAGE_FILES:
        at = open_link(f"/{page}")
        assert_clean(at)
        if page == "board":  # no picture before a submission: the shipped challenges
            assert len(at.selectbox(key="board_challenge").options) == 3
        elif page != "train":  # the Train page has no picture before a training
            assert at.get("image") or at.get("plotly_chart"), page
        assert not any("not on this server" in str(w.value) for w in at.warning), page
    assert status() == before
