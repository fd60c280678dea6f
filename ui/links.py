"""The view in the URL: a copied link opens exactly the same view for anybody.

Page widgets are bound to the query string by Streamlit itself: ``bind=links.URL`` with
the widget's ``key`` as the parameter name. Streamlit seeds the widget from the URL,
leaves default values out, drops values a widget cannot take (unknown options, numbers
out of range, NaN, garbage) and updates the URL in place, without a history entry per
slider step.

The sidebar's choices are written here, by short, stable names: ``dataset``, ``arch``,
``model`` (a shipped checkpoint's name, or ``untrained``) and ``present`` (presenter
mode). They are read once, on a session's first run. A model trained or uploaded in a
session cannot travel in a link: the link then names no model, and opens the
pretrained one for the same dataset and architecture.

Whatever a link carried that was not used (an unknown name, a value no widget could
take) is reported once, by name only, in a small notice.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlencode

import segno
import streamlit as st

URL = "query-params"  # widgets: bind=links.URL
SIDEBAR = ("dataset", "arch", "model", "present")
UNTRAINED = "untrained"
_CHECKED = "_link_checked"
_PENDING = "_link_notice"
_SHOWN_NAME = re.compile(r"[^A-Za-z0-9_-]")  # what of an unused name the notice repeats


def model_param(model_id: str) -> str | None:
    """The sidebar's model id as a link carries it (None: a session's own model)."""
    kind, _, name = model_id.partition(":")
    if kind == "file":
        return name.removesuffix(".pt")
    if kind == "untrained":
        return UNTRAINED
    return None


def read_sidebar(
    datasets: Collection[str], archs: Collection[str], files: dict[str, tuple[str, str]]
) -> tuple[dict[str, Any], list[str]]:
    """The sidebar's settings a link asks for, and the names of those it could not use.

    Args:
        datasets, archs: the valid names.
        files: shipped checkpoint name (no ``.pt``) -> (dataset, arch).

    Returns:
        (session-state values to set, unused parameter names)
    """
    params = st.query_params
    values: dict[str, Any] = {}
    unused: list[str] = []
    for name, valid in (("dataset", datasets), ("arch", archs)):
        value = params.get(name)
        if value is not None:
            if value in valid:
                values[name] = value
            else:
                unused.append(name)
    model = params.get("model")
    if model is not None:
        target = files.get(model)
        wanted = values.get("dataset", st.session_state.get("dataset"))
        if model == UNTRAINED:
            values["model_id"] = f"untrained:{values.get('arch') or st.session_state['arch']}"
        elif target is not None and target[0] == wanted:
            values["model_id"] = f"file:{model}.pt"
            values["arch"] = target[1]
        else:
            unused.append("model")
    present = params.get("present")
    if present is not None:
        if present in ("1", "true", "0", "false"):
            values["present"] = present in ("1", "true")
        else:
            unused.append("present")
    return values, unused


def write_sidebar(dataset: str | None, arch: str, model_id: str, present: bool) -> None:
    """Put the sidebar's current choices into the URL (only what changed); ``dataset``
    None: one a link cannot carry (a session's uploaded pictures)."""
    wanted: dict[str, str | None] = {
        "dataset": dataset,
        "arch": arch,
        "model": model_param(model_id),
        "present": "1" if present else None,
    }
    params = st.query_params
    for name, value in wanted.items():
        if value is None:
            if name in params:
                del params[name]
        elif params.get(name) != value:
            params[name] = value


def first_run() -> bool:
    return _CHECKED not in st.session_state


def snapshot() -> dict[str, list[str]]:
    """The query string as the link brought it (call before any widget is drawn)."""
    params = st.query_params
    return {name: params.get_all(name) for name in params}


def check(opened_with: dict[str, list[str]], unused: list[str]) -> None:
    """Call at the end of a session's first run: note what the link carried in vain.

    A bound parameter that Streamlit dropped (a value its widget cannot take) or changed
    (clamped into range) counts as unused, unless the widget holds that same value: a
    default value is dropped from the URL too.
    """
    st.session_state[_CHECKED] = True
    params = st.query_params
    unused = list(unused)
    for name, raw in opened_with.items():
        if name in SIDEBAR or name in unused or name.lower() in ("embed", "embed_options"):
            continue
        if name not in st.session_state:  # no widget of that name on this page
            unused.append(name)
            del params[name]  # not bound to a widget, so ours to drop from the URL
            continue
        now = params.get_all(name) if name in params else None
        if now is not None and _same(now, raw):
            continue
        if _same(st.session_state[name], raw):
            continue
        unused.append(name)
    if unused:
        names = sorted({_SHOWN_NAME.sub("", n)[:30] or "?" for n in unused})
        st.session_state[_PENDING] = names


def show_notice() -> None:
    """The notice about unused link parameters, once (in the page, small)."""
    names = st.session_state.pop(_PENDING, None)
    if names:
        shown = ", ".join(f"`{n}`" for n in names[:8]) + (" ..." if len(names) > 8 else "")
        st.toast(
            f"Part of this link was not used: {shown} (unknown names or values "
            "out of range). The rest of the view is as linked.",
            icon=":material/link_off:",
        )


def _same(value: Any, raw: list[str]) -> bool:
    """Whether a widget's value (or a URL's) is what ``raw`` asked for, loosely: numbers
    by value ("0.30" is 0.3), booleans in either spelling."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) != len(raw):
        return False
    for v, r in zip(values, raw, strict=True):
        if isinstance(v, bool):
            if r.lower() != str(v).lower():
                return False
        elif isinstance(v, (int, float)) or _number(v) is not None:
            a, b = _number(v), _number(r)
            if a is None or b is None or not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif str(v) != r:
            return False
    return True


def _number(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def share_url() -> str:
    """The link to this view: the page's address and the current query string."""
    base = (st.context.url or "").split("?", 1)[0]
    params = st.query_params
    query = urlencode([(k, v) for k in params for v in params.get_all(k)])
    return f"{base}?{query}" if query else base


@st.cache_data(max_entries=256, show_spinner=False)
def qr_png(text: str, scale: int = 8) -> bytes | None:
    """A QR code of ``text`` as PNG, with a wide quiet zone (scans from a projection);
    None if ``text`` is too long for any QR code."""
    try:
        code = segno.make(text, error="m", micro=False)
    except segno.DataOverflowError:
        return None
    buf = io.BytesIO()
    code.save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()
