"""The drawing pad: a student draws with the mouse, a pen or a finger, and the page gets
the model's input, made from the drawing the way MNIST's digits were made.

The pad is ``streamlit-drawable-canvas`` (MIT; a components-v2 element drawn in the page
itself, with no files from the internet). Its toolbar, above the pad, has undo (the
last stroke), redo and clear (the bin). The pixels come back as a PNG, which is checked
like any other upload before it is decoded (:func:`convae.drawing.read_png`).
"""

from __future__ import annotations

import streamlit as st
import torch
from streamlit_drawable_canvas import st_canvas

from convae.drawing import DrawingError, box_for, drawing_to_input, read_png

from . import widgets

SIZE = 280  # pixels on screen: 10x a 28x28 field, and narrower than a phone
PEN = 20  # a digit drawn across most of the pad ends up with MNIST's 2-3 pixel strokes
HOW = (
    "Draw with the mouse, a pen or a finger. The toolbar above the pad undoes the last "
    "stroke, redoes it, or clears the pad (the bin). Right: what the model gets, made "
    "the way MNIST's digits were: the strokes' box scaled to {box} pixels (anti-aliased, "
    "hence the grey edges) and centred in {h}x{w} by its centre of mass."
)


def _sent_png(key: str) -> object:
    """The pad's last picture as it arrived from the browser (any value at all)."""
    state = st.session_state.get(key)
    try:
        return state["drawing"]["data"]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        return None


def draw_pad(key: str, dataset: str, shape: tuple[int, int, int]) -> torch.Tensor | None:
    """The pad and, beside it, what the model gets; returns that input (C, H, W), or
    None after saying why there is none (nothing drawn yet, or a picture refused)."""
    c_pad, c_seen = st.columns([1, 2], vertical_alignment="top")
    with c_pad:
        try:
            st_canvas(
                stroke_width=PEN,
                stroke_color="#ffffff",
                background_color="#000000",
                height=SIZE,
                width=SIZE,
                drawing_mode="freedraw",
                return_image_data=True,
                key=key,
            )
        except (AttributeError, TypeError, KeyError, ValueError):  # the browser sent garbage
            st.error("The drawing pad sent something unreadable: clear it and draw again.")
            return None
    png = _sent_png(key)
    with c_seen:
        h, w = shape[1:]
        box = box_for(dataset, shape)
        st.caption(HOW.format(box=box, h=h, w=w))
        if png is None:
            st.info("Nothing drawn yet: draw a digit on the pad.", icon=":material/draw:")
            return None
        try:
            x = drawing_to_input(read_png(png), shape, box)
        except DrawingError as e:
            st.error(f"This drawing cannot be used: {e}.")
            return None
        if x is None:
            st.info("The pad is empty: draw a digit on it.", icon=":material/draw:")
            return None
        widgets.picture(x[None], f"what the model gets ({h}x{w})", scale=5)
    return x
