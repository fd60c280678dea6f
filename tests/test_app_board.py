"""The class challenge's page in-process (AppTest): submitting, hostile input, the rate
limit, and the teacher's controls with and without the passphrase.

Every test gets an empty board of its own (``$CONVAE_BOARD_DIR`` in a temporary folder).
"""

from __future__ import annotations

import logging

import pytest
from hostile import hostile_checkpoints
from support import REPO, app_environment, assert_clean, new_app

from convae.classroom.board_store import shared_store

BOARD = "app_pages/board.py"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def app(data_root, tmp_path, monkeypatch):
    """The app on MNIST with the shipped checkpoints and an empty board."""
    monkeypatch.setenv("CONVAE_BOARD_DIR", str(tmp_path / "board"))
    with app_environment(data_root, REPO / "checkpoints"):
        yield shared_store()


@pytest.fixture
def shipped_model() -> bytes:
    return (REPO / "checkpoints" / "mnist-conv-upsample.pt").read_bytes()


def texts(at, kinds=("markdown", "caption", "success", "info", "warning", "error", "text")):
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


def messages(at) -> list[str]:
    return [str(e.value) for kind in ("error", "warning", "success") for e in at.get(kind)]


def upload_and_submit(at, data: bytes, nickname: str, name: str = "mine.pt"):
    at.main.get("file_uploader")[0].upload(name, data).run()
    at.text_input(key="board_upload_nickname").set_value(nickname).run()
    at.button(key="board_upload_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def measured(at) -> None:
    """Wait for this session's submissions, then run the page as its polling would."""
    for job in at.session_state["submissions"]:
        assert job.join(timeout=180)
    at.run()


def test_the_board_lists_the_shipped_challenges_and_says_how_to_turn_on_the_teacher(app):
    at = new_app(BOARD)
    options = at.selectbox(key="board_challenge").options
    assert options == [
        "Best 196-value code on MNIST",
        "Best denoiser at Gaussian 0.5",
        "Smallest code above 20 dB",
    ]
    assert "No entries yet" in texts(at)
    assert "CONVAE_TEACHER_PASSPHRASE" in texts(at)
    assert not [t for t in at.text_input if t.key == "board_pass"]  # nothing to unlock


def test_an_uploaded_checkpoint_is_measured_by_the_server_and_its_nickname_stays_text(
    app, shipped_model
):
    at = new_app(BOARD)
    hostile = "<img onerror=1>**b**"
    upload_and_submit(at, shipped_model, hostile)
    assert_clean(at)
    assert any("Submitted as" in s.value for s in at.success), messages(at)
    measured(at)
    assert_clean(at)
    [entry] = app.entries("mnist-196")
    assert entry.nickname == hostile and entry.code_size == 196
    table = at.dataframe[0].value
    assert list(table["nickname"]) == [hostile]
    assert list(table["place"]) == ["1"]
    assert f"1. {hostile}: {entry.psnr:.2f} dB" in [t.value for t in at.text]
    markup = [e.value for kind in ("markdown", "caption") for e in at.get(kind)]
    assert not any("onerror" in m for m in markup)  # never read as markdown or HTML
    assert "measured" in texts(at) and "held-out images" in texts(at)


def test_hostile_checkpoints_are_refused_with_a_message_and_nothing_reaches_the_board(
    app, tmp_path
):
    marker = tmp_path / "pwned"
    files = hostile_checkpoints(marker)
    at = new_app(BOARD)
    for name in ("evil-torch-zip.pt", "deflate-bomb.pt", "cifar-model.pt", "truncated.pt"):
        upload_and_submit(at, files[name], "Mallory", name)
        refused = [e.value for e in at.error if e.value.startswith("Not submitted")]
        assert refused and "\n" not in refused[-1] and "Traceback" not in refused[-1], name
    assert not marker.exists()
    assert at.session_state["submissions"] == []
    assert app.entries("mnist-196") == []


def test_a_session_submits_at_most_three_times_a_minute(app, shipped_model):
    import time

    at = new_app(BOARD)
    upload_and_submit(at, shipped_model, "Ada")
    assert any("Submitted as Ada" in s.value for s in at.success), messages(at)
    measured(at)
    # two more in the same minute (set directly: each real one takes a measurement)
    now = time.monotonic()
    at.session_state["_submitted_at"] = [*at.session_state["_submitted_at"], now, now]
    upload_and_submit(at, shipped_model, "Ada")
    assert any("at most 3 submissions a minute" in e.value for e in at.error), messages(at)
    assert len(at.session_state["submissions"]) == 1
    at.session_state["_submitted_at"] = [now - 61] * 3  # a minute later: allowed again
    upload_and_submit(at, shipped_model, "Ada")
    assert any("Submitted as Ada" in s.value for s in at.success), messages(at)
    measured(at)
    assert len(app.entries("mnist-196")) == 2


def test_a_model_trained_on_the_train_page_is_submitted_from_there(app):
    at = new_app("app_pages/train.py")
    at.select_slider(key="train_limit").set_value(300)
    at.slider(key="train_epochs").set_value(1)
    at.button(key="train_start").click().run()
    assert at.session_state["job"].join(timeout=180)
    at.run()
    assert_clean(at)
    at.text_input(key="train_submit_nickname").set_value("Grace").run()
    at.button(key="train_submit_button").click().run()
    assert_clean(at)
    measured(at)
    [entry] = app.entries("mnist-196")
    assert (entry.nickname, entry.arch) == ("Grace", "conv-upsample")
    assert any("it is on the board" in s.value for s in at.success)


# ---------------------------------------------------------------------- the teacher
@pytest.fixture
def teacher(app, monkeypatch):
    monkeypatch.setenv("CONVAE_TEACHER_PASSPHRASE", PASSPHRASE)
    return app


def unlock(at, attempt: str):
    at.text_input(key="board_pass").set_value(attempt)
    at.button[[b.label for b in at.button].index("Unlock")].click().run()
    return at


def teacher_buttons(at) -> list[str]:
    return [b.key for b in at.button if (b.key or "").startswith("board_t_")]


def test_wrong_passphrases_are_refused_logged_and_limited(teacher, caplog):
    at = new_app(BOARD)
    with caplog.at_level(logging.WARNING, logger="convae.board"):
        for _ in range(5):
            unlock(at, "guess")
            assert any(e.value == "Wrong passphrase." for e in at.error)
    assert sum("wrong teacher passphrase" in r.message for r in caplog.records) == 5
    unlock(at, PASSPHRASE)  # right, but too late: this session must wait
    assert any("too many wrong passphrases" in e.value.lower() for e in at.error)
    assert teacher_buttons(at) == []
    assert teacher.failed_attempts(300, session=at.session_state["sid"]) == 5


def test_the_teacher_closes_hides_resets_and_exports(teacher, shipped_model):
    student = new_app(BOARD)
    upload_and_submit(student, shipped_model, "Ada")
    measured(student)
    at = unlock(new_app(BOARD), PASSPHRASE)
    assert_clean(at)
    assert {"board_t_open", "board_t_reset", "board_t_hide", "board_t_remove"} <= set(
        teacher_buttons(at)
    )
    csv = [d for d in at.get("download_button") if d.proto.label == "Export CSV"]
    assert csv

    at.button(key="board_t_open").click().run()
    assert not teacher.challenge("mnist-196").is_open
    student.run()
    assert "This challenge is not open for submissions" in texts(student)
    assert not [b for b in student.button if b.key == "board_upload_button"]

    at.button(key="board_t_hide").click().run()
    assert teacher.board("mnist-196")[1] == []
    at.button(key="board_t_hide").click().run()  # "Show" now
    assert [r.entry.nickname for r in teacher.board("mnist-196")[1]] == ["Ada"]
    at.checkbox(key="board_t_confirm").check().run()
    at.button(key="board_t_reset").click().run()
    assert teacher.entries("mnist-196", include_hidden=True) == []

    at.text_input(key="board_t_title").set_value("Fashion by SSIM")
    at.selectbox(key="board_t_dataset").set_value("fashion-mnist")
    at.selectbox(key="board_t_rule").set_value("ssim")
    at.button[[b.label for b in at.button].index("Open the challenge")].click().run()
    assert_clean(at)
    assert teacher.challenge("fashion-by-ssim").challenge.rule == "ssim"
    at.button(key="board_t_lock").click().run()
    assert teacher_buttons(at) == []


def test_a_forged_widget_state_or_link_without_the_passphrase_does_nothing(teacher, shipped_model):
    student = new_app(BOARD)
    upload_and_submit(student, shipped_model, "Ada")
    measured(student)
    before = (teacher.challenge("mnist-196"), teacher.entries("mnist-196", include_hidden=True))

    at = new_app(BOARD)
    # what a forged message could carry: the teacher's widgets' values, and more than a
    # browser can (session-state keys no widget has)
    at.session_state["board_t_confirm"] = True
    at.session_state["board_t_entry"] = before[1][0].id
    at.session_state["_teacher_token"] = "0" * 64
    at.session_state["teacher"] = True
    at.query_params["board_t_reset"] = "true"
    at.run()
    for key in ("board_t_open", "board_t_reset", "board_t_hide", "board_t_remove"):
        at.session_state[key] = True
    at.run()
    assert teacher_buttons(at) == []
    assert [t.key for t in at.text_input if t.key == "board_pass"] == ["board_pass"]
    after = (teacher.challenge("mnist-196"), teacher.entries("mnist-196", include_hidden=True))
    assert after == before


def test_a_link_opens_a_challenge_by_its_title(app):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.query_params["board_challenge"] = "Smallest code above 20 dB"
    at.switch_page(BOARD).run()
    assert_clean(at)
    assert at.selectbox(key="board_challenge").value == "Smallest code above 20 dB"
    assert not at.toast  # nothing in the link went unused
    assert "smallest code reaching 20 dB of PSNR" in texts(at)
