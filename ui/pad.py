"""The drawing pad: a student draws with the mouse, a pen or a finger, and the page gets
the model's input, made from the drawing the way MNIST's digits were made.

The pad is ``streamlit-drawable-canvas`` (MIT; a components-v2 element drawn in the page
itself, with no files from the internet). Its own toolbar (undo, redo, clear) shows only
while a mouse hovers over the pad, so a phone or a tablet would never see it: the
buttons under the pad undo the last stroke and clear it for every pointer. They hand
the pad a new starting drawing (its strokes but the last, or none); the pad draws it
and sends its picture back, as after a stroke. The pixels come back as a PNG, which is
checked like any other upload before it is decoded (:func:`convae.data.drawing.read_png`).
"""

from __future__ import annotations

import streamlit as st
import torch
from streamlit_drawable_canvas import st_canvas

from convae.data.drawing import DrawingError, box_for, drawing_to_input, read_png

from .pictures import picture

MAX_STROKES = 1000  # more strokes than this in a 280-pixel pad are not a drawing
SIZE = 280  # pixels on screen: 10x a 28x28 field, and narrower than a phone
PEN = 20  # a digit drawn across most of the pad ends up with MNIST's 2-3 pixel strokes
HOW = (
    "Draw with the mouse, a pen or a finger. Beside the pad: what the model gets, made "
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


def _strokes(key: str) -> list[dict]:
    """The pad's strokes as it last sent them (freehand paths only; anything else the
    browser may have sent is dropped: it goes back to the browser on undo)."""
    state = st.session_state.get(key)
    try:
        objects = state["drawing"]["raw"]["objects"]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        return []
    if not isinstance(objects, list) or len(objects) > MAX_STROKES:
        return []
    return [o for o in objects if isinstance(o, dict) and o.get("type") == "Path"]


def _start_over(key: str, strokes: list[dict]) -> None:
    """Give the pad a new starting drawing. The revision number makes it differ from
    the one before, even when both are empty: the pad redraws only on a change."""
    pads = st.session_state["pad_drawings"]
    revision = pads.get(key, {}).get("revision", 0) + 1
    pads[key] = {"objects": strokes, "revision": revision}


def _undo(key: str) -> None:
    _start_over(key, _strokes(key)[:-1])


def _clear(key: str) -> None:
    _start_over(key, [])


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
                initial_drawing=st.session_state["pad_drawings"].get(key),
                key=key,
            )
        except (AttributeError, TypeError, KeyError, ValueError):  # the browser sent garbage
            st.error("The drawing pad sent something unreadable: clear it and draw again.")
            return None
        c_undo, c_clear = st.columns(2)
        c_undo.button(
            "Undo stroke",
            icon=":material/undo:",
            key=f"{key}_undo",
            on_click=_undo,
            args=(key,),
            width="stretch",
        )
        c_clear.button(
            "Clear",
            icon=":material/delete:",
            key=f"{key}_clear",
            on_click=_clear,
            args=(key,),
            width="stretch",
        )
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
        picture(x[None], f"what the model gets ({h}x{w})", scale=5)
    return x
