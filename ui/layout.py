"""Page layout for a projector, a laptop and a phone.

Presenter mode (the sidebar's toggle, or ``?present=1`` in a link) is for the projector:
larger type and pictures, and the secondary explanations folded away so that each
page's main picture is on the first screen at 1280x720. On a phone-sized screen the
sidebar starts folded (``initial_sidebar_state="auto"``) and the page's main picture is
moved up to just below the title.
"""

from __future__ import annotations

import streamlit as st

MAIN = "main_picture"  # key of the container that holds a page's main picture

_BASE_CSS = f"""
<style>
[data-testid='stMainBlockContainer'] {{padding-top: 2.5rem}}
/* pictures are sent at one pixel per pixel and enlarged here, crisply (ui.widgets) */
[data-testid='stImage'] img {{image-rendering: pixelated}}
@media (max-width: 640px) {{
  [data-testid='stMainBlockContainer'] {{padding: 3.2rem 0.8rem 1rem}}
  /* the main picture first, right under the title */
  [data-testid='stMain'] [data-testid='stVerticalBlock'] > div:has(.st-key-{MAIN}) {{order: -1}}
  [data-testid='stMain'] [data-testid='stVerticalBlock'] > div:has(h1) {{order: -2}}
  h1 {{font-size: 1.7rem !important}}
}}
</style>
"""

_PRESENTER_CSS = """
<style>
html {font-size: 19px}
[data-testid='stMainBlockContainer'] {padding-top: 3rem; max-width: 100%}
h1 {font-size: 2.1rem !important; padding-bottom: 0.2rem !important}
[data-testid='stMetricValue'] {font-size: 2.2rem}
[data-testid='stCaptionContainer'] {font-size: 0.95rem}
</style>
"""


def presenting() -> bool:
    return bool(st.session_state.get("present"))


def apply_css() -> None:
    st.html(_BASE_CSS + (_PRESENTER_CSS if presenting() else ""))


def explain(text: str) -> None:
    """A secondary explanation: a caption, folded away in presenter mode."""
    if not presenting():
        st.caption(text)


def main_picture():
    """The container for the page's main picture (moved up on a phone)."""
    return st.container(key=MAIN)
