"""Errors become a message on the page, never a traceback.

A :class:`convae.ConvaeError` already says what is wrong and what to do, so its text is
shown as is. Anything else is a bug: the page says so briefly and the traceback goes to
the server log. ``CONVAE_DEBUG=1`` re-raises instead, for development.
"""

from __future__ import annotations

import functools
import logging
import os

import streamlit as st

from convae import ConvaeError

log = logging.getLogger("convae.app")


def show(error: Exception) -> None:
    if isinstance(error, ConvaeError):
        st.error(str(error), icon=":material/warning:")
    else:
        log.exception("unexpected error in the app", exc_info=error)
        st.error(
            f"Something went wrong ({type(error).__name__}: {error}). The details are in "
            "the server log; try another setting or reload the page.",
            icon=":material/bug_report:",
        )


def debug() -> bool:
    return os.environ.get("CONVAE_DEBUG", "") not in ("", "0")


def guarded(fn):
    """Run ``fn``; show any error on the page (for fragments, which run on their own)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # st.stop / st.rerun are BaseExceptions and pass through
            if debug():
                raise
            show(e)

    return wrapper
