"""The class challenge's UI glue: the board's store, submitting, and the teacher's key.

Submitting puts a :class:`convae.classroom.submission.Submission` into the server's training queue
(:func:`ui.state.training_queue`), so that a class submitting at once waits in line; a
session may submit :data:`SUBMISSIONS_PER_MINUTE` times a minute.

The teacher's controls need the passphrase from ``$CONVAE_TEACHER_PASSPHRASE`` or
``teacher_passphrase`` in Streamlit's secrets. Unlocking stores a token in the session
that only the server can make (an HMAC of the session's id under the passphrase) and
every teacher action checks it again, so no widget value or link can stand in for it.
Wrong passphrases are logged and limited per session and per server.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from convae import Autoencoder, ConvaeError, load_checkpoint
from convae.classroom.board_store import BoardError, BoardStore, Listed, shared_store
from convae.classroom.challenge import MAX_NICKNAME, SHOWN_IMAGES
from convae.classroom.queue import AlreadyQueuedError
from convae.classroom.submission import Submission
from convae.nn.checkpoint import to_bytes

from . import state

PASSPHRASE_ENV = "CONVAE_TEACHER_PASSPHRASE"
SECRET_NAME = "teacher_passphrase"
SUBMISSIONS_PER_MINUTE = 3
TRIES_PER_SESSION, TRIES_WINDOW_S = 5, 300.0  # wrong passphrases a session may try
TRIES_PER_SERVER, SERVER_WINDOW_S = 30, 60.0  # and all sessions together
_TOKEN = "_teacher_token"  # session-state key no widget has
_QUEUE_OWNER = "{sid}:challenge"  # a session's measurement, beside its own training

log = logging.getLogger("convae.board")


# ------------------------------------------------------------------------- the store
def store() -> BoardStore:
    """The board's database (created on first use).

    Raises:
        BoardError: it cannot be reached (the message says why).
    """
    return shared_store()


def require_store() -> BoardStore:
    """The store, or a one-line error on the page and the page stops here."""
    try:
        return store()
    except BoardError as e:
        st.error(f"{e}. Ask whoever runs the server to check `CONVAE_DATABASE_URL`.")
        st.stop()


@st.cache_data(max_entries=512, show_spinner=False)
def reconstructions(url: str, entry_id: int) -> bytes | None:
    """An entry's reconstruction picture; entries never change, so it is read once."""
    return store().reconstructions(entry_id)


# ------------------------------------------------------------------------- submitting
def _recent_submissions() -> list[float]:
    now = time.monotonic()
    recent = [t for t in st.session_state.get("_submitted_at", []) if now - t < 60]
    st.session_state["_submitted_at"] = recent
    return recent


def submit(listed: Listed, nickname: str, model: Autoencoder, meta: dict[str, Any]) -> str:
    """Queue ``model`` for measuring under ``nickname``; returns what to tell the student.

    Raises:
        ConvaeError: a closed challenge, a model for other images, a bad nickname, too
            many submissions this minute, or a full queue (with a message for the page).
    """
    challenge = listed.challenge
    if not listed.is_open:
        raise ConvaeError("this challenge is closed: the teacher stopped submissions")
    if tuple(model.config.in_shape) != state.dataset_shape(challenge.dataset):
        raise ConvaeError(
            f"this challenge is on {state.DATASET_LABELS.get(challenge.dataset)}; your model "
            f"takes {tuple(model.config.in_shape)} images"
        )
    if len(_recent_submissions()) >= SUBMISSIONS_PER_MINUTE:
        raise ConvaeError(
            f"at most {SUBMISSIONS_PER_MINUTE} submissions a minute; wait a little and "
            "submit your best model"
        )
    held_out = state.held_out_images(challenge.dataset)
    shown = state.get_dataset(challenge.dataset).images[:SHOWN_IMAGES]
    job = Submission(store(), challenge, nickname, to_bytes(model, meta), held_out, shown)
    owner = _QUEUE_OWNER.format(sid=st.session_state["sid"])
    try:
        place = state.training_queue().submit(owner, job, patient=True)
    except AlreadyQueuedError:
        raise ConvaeError(
            "your last submission is still waiting to be measured; submit again once it "
            "is on the board"
        ) from None
    st.session_state["_submitted_at"].append(time.monotonic())
    st.session_state["submissions"] = [*st.session_state["submissions"][-9:], job]
    where = "now" if place.running else f"after {place.position} job(s) in the queue"
    return f"Submitted as {job.nickname}: the server measures it {where}."


def my_submissions() -> None:
    """This session's submissions and what became of them (newest first)."""
    jobs: list[Submission] = st.session_state["submissions"]
    for job in reversed(jobs[-5:]):
        snap = job.snapshot()
        who = f"{job.challenge.title}: {job.nickname}"
        if snap.state == "done" and snap.result is not None:
            st.success(
                f"{who}: measured {snap.result.psnr:.2f} dB PSNR, SSIM {snap.result.ssim:.3f} "
                f"on {snap.result.n:,} held-out images; it is on the board.",
                icon=":material/check_circle:",
            )
        elif snap.state == "failed":
            st.error(f"{who}: not measured: {snap.error}", icon=":material/error:")
        else:
            st.info(f"{who}: waiting to be measured...", icon=":material/hourglass_top:")


def pending() -> bool:
    """Whether a submission of this session is still being measured."""
    return any(not job.finished for job in st.session_state["submissions"])


def submit_form(
    model: Autoencoder | None,
    meta: dict[str, Any],
    dataset: str | None,
    key: str,
    only: Listed | None = None,
) -> None:
    """Choose an open challenge (or submit to ``only``), a nickname, and submit ``model``
    (None: an uploaded checkpoint)."""
    if only is not None:
        listed = [only] if only.is_open else []
    else:
        listed = [c for c in require_store().challenges() if c.is_open]
    if dataset is not None:
        listed = [c for c in listed if c.challenge.dataset == dataset]
    if not listed:
        what = "This challenge is" if only is not None else "No challenge for this dataset is"
        st.info(f"{what} not open for submissions right now.", icon=":material/flag:")
        return
    by_slug = {c.challenge.slug: c for c in listed}
    c_pick, c_nick = st.columns([2, 1])
    if only is not None:
        slug = only.challenge.slug
        c_pick.markdown(f"**{only.challenge.title}**: {only.challenge.describe()}")
    else:
        slug = c_pick.selectbox(
            "Challenge",
            list(by_slug),
            format_func=lambda s: by_slug[s].challenge.title,
            key=f"{key}_challenge",
        )
    nickname = c_nick.text_input(
        "Nickname",
        key=f"{key}_nickname",
        max_chars=MAX_NICKNAME,
        help="Shown on the board as plain text. Submit again under the same nickname: "
        "your best entry counts.",
    )
    upload = None
    if model is None:
        upload = st.file_uploader(
            "Your checkpoint (.pt, saved by convae)", type=["pt"], key=f"{key}_upload"
        )
    if st.button("Submit", icon=":material/send:", type="primary", key=f"{key}_button"):
        try:
            if model is None:
                if upload is None:
                    raise ConvaeError("choose a checkpoint file first")
                shape = state.dataset_shape(by_slug[slug].challenge.dataset)
                ckpt = load_checkpoint(upload.getvalue(), expect_shape=shape)
                model, meta = ckpt.model, ckpt.meta
            st.success(submit(by_slug[slug], nickname, model, meta), icon=":material/send:")
        except ConvaeError as e:
            text = str(e)
            st.error(f"Not submitted: {text[0].lower()}{text[1:]}", icon=":material/block:")


# ----------------------------------------------------------------------- the teacher
def passphrase() -> str | None:
    """The configured teacher passphrase (None: the teacher's controls are off)."""
    value = os.environ.get(PASSPHRASE_ENV, "")
    if not value:
        try:
            value = str(st.secrets.get(SECRET_NAME, "") or "")
        except Exception:  # no secrets file, or an unreadable one: no passphrase there
            value = ""
    return value or None


def _token(secret: str) -> str:
    message = f"convae-teacher:{st.session_state['sid']}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def is_teacher() -> bool:
    """Whether this session unlocked the teacher's controls with the current passphrase."""
    secret = passphrase()
    token = st.session_state.get(_TOKEN)
    if secret is None or not isinstance(token, str):
        return False
    return hmac.compare_digest(token.encode(), _token(secret).encode())


def unlock(attempt: str) -> str | None:
    """Check a passphrase; None when it unlocked, else what to tell the person."""
    secret = passphrase()
    if secret is None:
        return "the teacher's controls are off on this server"
    board, sid = store(), st.session_state["sid"]
    if (
        board.failed_attempts(TRIES_WINDOW_S, session=sid) >= TRIES_PER_SESSION
        or board.failed_attempts(SERVER_WINDOW_S) >= TRIES_PER_SERVER
    ):
        log.warning("teacher passphrase refused without checking: too many wrong tries")
        return "too many wrong passphrases: wait a few minutes before trying again"
    ok = hmac.compare_digest(attempt.encode(), secret.encode())
    board.record_attempt(sid, ok)
    if not ok:
        log.warning("wrong teacher passphrase from session %s", sid)
        return "wrong passphrase"
    log.info("teacher's controls unlocked by session %s", sid)
    st.session_state[_TOKEN] = _token(secret)
    return None


def lock() -> None:
    st.session_state.pop(_TOKEN, None)


def teacher_only(action: Callable[..., None]) -> Callable[..., None]:
    """``action`` that does nothing (and logs it) unless this session is the teacher's."""

    def guarded(*args: Any, **kwargs: Any) -> None:
        if not is_teacher():
            log.warning("a teacher's action without the passphrase was ignored")
            return
        action(*args, **kwargs)

    return guarded
