"""What Streamlit's deltas say, read as the frontend reads them: the page's elements by
delta path, its widgets (kind, options, range, fragment, URL binding), the state the
frontend holds for each widget and sends back with every rerun, an element's text and
the images it shows. No I/O: ``streamlit_client.Tab`` feeds it the messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from streamlit.proto.Element_pb2 import Element
from streamlit.proto.WidgetStates_pb2 import WidgetState

MAIN, SIDEBAR = 0, 1  # the first number of a delta path: the page's root containers


@dataclass
class Node:
    """What sits at one delta path: an element, or a block (a container) when
    ``element`` is None."""

    element: Element | None
    fragment_id: str  # the fragment that drew it ("" outside fragments)
    script_hash: str  # the script that drew it: the main script (app.py) or a page's
    run_id: str  # the run that drew it last

    @property
    def kind(self) -> str:
        if self.element is None:
            return "block"
        return self.element.WhichOneof("type") or ""


@dataclass(frozen=True)
class Widget:
    """A widget on the page, as far as a simulated user needs to know it."""

    id: str
    kind: str  # slider, select_slider, selectbox, radio, checkbox, toggle, button, ...
    label: str
    path: tuple[int, ...]
    fragment_id: str
    script_hash: str
    disabled: bool
    options: tuple[str, ...] = ()  # select_slider, selectbox, radio
    low: float = 0.0  # slider, number_input
    high: float = 0.0
    step: float = 1.0
    integer: bool = False
    query_key: str | None = None  # bound to this URL parameter (bind="query-params")

    @property
    def in_main(self) -> bool:
        return self.path[0] == MAIN


WIDGET_KINDS = {
    "slider",
    "selectbox",
    "radio",
    "checkbox",
    "number_input",
    "button",
    "text_input",
    "text_area",
    "multiselect",
    "file_uploader",
}


def widget_of(node_path: tuple[int, ...], node: Node) -> Widget | None:
    """The widget a node holds, or None."""
    e = node.element
    kind = node.kind
    if e is None or kind not in WIDGET_KINDS:
        return None
    proto = getattr(e, kind)
    fields = proto.DESCRIPTOR.fields_by_name
    bound = "query_param_key" in fields and proto.HasField("query_param_key")
    common = dict(
        id=proto.id,
        label=proto.label,
        path=node_path,
        fragment_id=node.fragment_id,
        script_hash=node.script_hash,
        disabled=bool(getattr(proto, "disabled", False)),
        query_key=proto.query_param_key if bound else None,
    )
    if kind == "slider":
        if proto.type == proto.Type.SELECT_SLIDER:
            return Widget(kind="select_slider", options=tuple(proto.options), **common)
        return Widget(
            kind="slider",
            low=proto.min,
            high=proto.max,
            step=proto.step or 1.0,
            integer=proto.data_type == proto.DataType.INT,
            **common,
        )
    if kind in ("selectbox", "radio", "multiselect"):
        return Widget(kind=kind, options=tuple(proto.options), **common)
    if kind == "checkbox":
        return Widget(kind="toggle" if proto.type == proto.StyleType.TOGGLE else kind, **common)
    if kind == "number_input":
        return Widget(
            kind=kind,
            low=proto.min if proto.has_min else float("-inf"),
            high=proto.max if proto.has_max else float("inf"),
            step=proto.step or 1.0,
            integer=proto.data_type == proto.DataType.INT,
            **common,
        )
    return Widget(kind=kind, **common)


def _given(proto, name: str) -> bool:
    """Whether a field holds a value (always, for fields without presence)."""
    f = proto.DESCRIPTOR.fields_by_name[name]
    return proto.HasField(name) if f.has_presence else True


def widget_state(element: Element) -> WidgetState | None:
    """The state the frontend holds for a widget it has just been sent: the value the
    server set (``set_value``) or else the widget's default; None for widgets that hold
    no state until used (buttons)."""
    kind = element.WhichOneof("type")
    if kind not in WIDGET_KINDS:
        return None
    proto = getattr(element, kind)
    ws = WidgetState(id=proto.id)
    set_value = getattr(proto, "set_value", False)
    if kind == "slider":
        if proto.type == proto.Type.SELECT_SLIDER:
            if set_value and proto.raw_value:
                ws.string_array_value.data.extend(proto.raw_value)
            else:
                ws.string_array_value.data.extend(proto.options[int(i)] for i in proto.default)
        else:
            ws.double_array_value.data.extend(proto.value if set_value else proto.default)
    elif kind in ("selectbox", "radio"):
        if set_value and _given(proto, "raw_value"):
            ws.string_value = proto.raw_value
        elif _given(proto, "default") and 0 <= proto.default < len(proto.options):
            ws.string_value = proto.options[proto.default]
        else:
            return None  # nothing selected
    elif kind == "multiselect":
        chosen = proto.raw_values if set_value else [proto.options[i] for i in proto.default]
        ws.string_array_value.data.extend(chosen)
    elif kind == "checkbox":
        ws.bool_value = proto.value if set_value else proto.default
    elif kind == "number_input":
        value = proto.value if set_value and _given(proto, "value") else proto.default
        if proto.data_type == proto.DataType.INT:
            ws.int_value = int(value)
        else:
            ws.double_value = value
    elif kind in ("text_input", "text_area"):
        ws.string_value = proto.value if set_value and _given(proto, "value") else proto.default
    elif kind == "file_uploader":
        ws.file_uploader_state_value.SetInParent()
    else:  # buttons: a trigger, sent only with the click
        return None
    return ws


def url_value(ws: WidgetState) -> str | list[str]:
    """How the frontend writes a bound widget's state into the URL (numbers as the
    server formats them: 5.0 -> "5")."""

    def number(v: float) -> str:
        return str(int(v)) if v == int(v) else str(v)

    which = ws.WhichOneof("value")
    if which == "double_array_value":
        values = [number(v) for v in ws.double_array_value.data]
    elif which == "string_array_value":
        values = list(ws.string_array_value.data)
    elif which == "bool_value":
        return "true" if ws.bool_value else "false"
    elif which == "double_value":
        return number(ws.double_value)
    elif which == "int_value":
        return str(ws.int_value)
    else:
        return str(getattr(ws, which)) if which else ""
    return values[0] if len(values) == 1 else values


def element_text(element: Element) -> str:
    """The readable text of an element ("" for those without)."""
    kind = element.WhichOneof("type")
    if kind in ("markdown", "text", "heading"):
        return getattr(element, kind).body
    if kind == "alert":
        return element.alert.body
    if kind == "progress":
        return element.progress.text
    if kind == "exception":
        return f"{element.exception.type}: {element.exception.message}"
    if kind == "metric":
        return f"{element.metric.label}: {element.metric.body}"
    if kind == "toast":
        return element.toast.body
    if kind == "imgs":
        return " | ".join(img.caption for img in element.imgs.imgs if img.caption)
    return ""


class Item(NamedTuple):
    """An element as text: its kind (an alert's with its format: ``alert.success``),
    its text, and a progress bar's value (0-100; None for other elements)."""

    kind: str
    text: str
    value: int | None = None


def item_of(element: Element) -> Item:
    kind: str = element.WhichOneof("type") or ""
    if kind == "alert":
        kind = f"alert.{element.alert.Format.Name(element.alert.format).lower()}"
    value = element.progress.value if kind == "progress" else None
    return Item(kind, element_text(element), value)


def media_urls(element: Element) -> list[str]:
    """The ``/media/...`` files an element shows (the ones a browser loads at once)."""
    if element.WhichOneof("type") == "imgs":
        return [img.url for img in element.imgs.imgs if img.url.startswith("/media/")]
    return []


def is_error(element: Element) -> bool:
    """An exception element, or an alert in the error format."""
    kind = element.WhichOneof("type")
    return kind == "exception" or (
        kind == "alert" and element.alert.format == element.alert.Format.ERROR
    )
