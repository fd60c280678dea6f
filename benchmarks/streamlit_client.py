"""A Streamlit browser tab without a browser: the app's own protocol, as the frontend
of Streamlit 1.67 speaks it (read from its code and from the frames a real Chromium
sends; ``benchmarks/browser_load.py`` drives a real one).

One :class:`Tab` is one browser tab:

- HTTP first, as a page load does (``/``, ``/_stcore/health``, ``/_stcore/host-config``),
  keeping the cookies it is given (a load balancer's affinity cookie, the XSRF cookie),
  then the websocket ``/_stcore/stream`` with the subprotocols ``streamlit`` and the XSRF
  token (or the frontend's placeholder), the cookies and an ``Origin`` header;
- ``rerun_script`` messages carrying the whole client state: the query string, the
  page's script hash, every widget state the tab holds (defaults of untouched widgets
  included, a button's trigger only in the message of its click), the cached message
  hashes and the browser context;
- the answers: ``new_session`` starts a run (with its run id and, for a fragment run,
  its fragment ids), deltas build the page tree by delta path (``streamlit_page`` reads
  them), ``script_finished`` ends
  the run and, like the frontend, then drops the elements that run did not redraw (only
  inside the fragments it ran, for a fragment run) and the states of widgets that are
  gone; ``page_info_changed`` replaces the query string; ``ref_hash`` messages are
  answered from the tab's own message cache, aged per run as the frontend ages it;
- images: each ``/media/...`` URL in an image delta is fetched over HTTP as soon as the
  delta arrives (once per URL, like a browser's cache; the favicon when it changes);
- fragment timers: an ``auto_rerun`` message starts an interval timer that reruns that
  fragment (``fragment_id``, ``is_auto_rerun``) like the frontend's ``setInterval``; a
  full run's start, ``stop_auto_rerun`` and a page change clear them.

The frontend sends ``app_heartbeat`` only when a host page that embeds the app asks it
to; a plain tab never does, so neither does this. Loopback addresses only: see
:func:`loopback_url`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit_page import (
    MAIN,
    Item,
    Node,
    Widget,
    element_text,
    is_error,
    item_of,
    media_urls,
    url_value,
    widget_of,
    widget_state,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

FINISHED = ForwardMsg.ScriptFinishedStatus
XSRF_COOKIE = "_streamlit_xsrf"
NO_XSRF_TOKEN = "PLACEHOLDER_AUTH_TOKEN"  # what the frontend sends without the cookie
HTTP_CONNECTIONS = 6  # a browser's connections per host
KEEP_ALIVE_S = 4.0  # idle connections older than this are not reused (uvicorn closes at 5)


# ------------------------------------------------------------------------ loopback
def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost``, 127.0.0.0/8 or ::1 (no lookup:
    any other name is refused, whatever it resolves to)."""
    host = host.strip().strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_url(url: str) -> urllib.parse.SplitResult:
    """``url`` parsed, if it is ``http://`` on a loopback host with a port.

    Raises:
        ValueError: any other URL (with a one-line reason).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported, not {url!r}")
    if not parts.hostname or not is_loopback(parts.hostname):
        raise ValueError(f"refusing {parts.hostname or url!r}: only loopback hosts are allowed")
    try:
        parts.port  # noqa: B018 - validates it
    except ValueError as e:
        raise ValueError(f"bad port in {url!r}") from e
    return parts


# ---------------------------------------------------------------------------- HTTP
class HttpError(Exception):
    """A failed request: no answer, a broken answer or a status other than 200."""


class _Stale(Exception):
    """A kept connection the server had closed: no byte of an answer came."""


def parse_head(head: bytes) -> tuple[int, dict[str, str], list[str]]:
    """An HTTP/1.1 response head: (status, headers with lower-case names, cookies
    set as ``name=value``)."""
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise HttpError(f"not an HTTP response: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "set-cookie":
            cookies.append(value.split(";", 1)[0].strip())
        else:
            headers[name] = value
    return int(m.group(1)), headers, cookies


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> tuple[bytes, bool]:
    """The body after a response head, and whether the connection can be reused."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers from Streamlit's server
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        return await reader.read(), False
    return body, headers.get("connection", "").lower() != "close"


class Http:
    """GETs on keep-alive HTTP/1.1 connections to one server, at most
    :data:`HTTP_CONNECTIONS` at once, with one cookie jar (a browser's, for one host)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._slots = asyncio.Semaphore(HTTP_CONNECTIONS)
        self.bytes = 0

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    async def get(self, path: str, timeout: float) -> bytes:
        """The body of ``GET path``. A kept connection that fails before answering is
        retried once on a new one, as browsers do (the server may have closed it).

        Raises:
            HttpError: no complete answer within ``timeout``, or a status other than 200.
        """
        async with self._slots:
            try:
                try:
                    return await asyncio.wait_for(self._get_once(path, self._connection()), timeout)
                except _Stale:
                    return await asyncio.wait_for(self._get_once(path, None), timeout)
            except (OSError, asyncio.IncompleteReadError) as e:
                raise HttpError(f"GET {path}: {type(e).__name__}: {e}") from None
            except asyncio.TimeoutError:
                raise HttpError(f"GET {path}: no answer within {timeout:.0f} s") from None

    def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """An idle kept connection, if one has not been idle too long."""
        while self._idle:
            reader, writer, since = self._idle.pop()
            if time.monotonic() - since < KEEP_ALIVE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def _get_once(
        self, path: str, kept: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None
    ) -> bytes:
        """One exchange, on ``kept`` (raising :class:`_Stale` if that fails before the
        answer's first byte) or else on a new connection."""
        reader, writer = kept or await asyncio.open_connection(self.host, self.port)
        keep = False
        try:
            cookie = self.cookie_header()
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Accept: */*\r\nConnection: keep-alive\r\n"
                + (f"Cookie: {cookie}\r\n" if cookie else "")
                + "\r\n"
            )
            try:
                writer.write(request.encode("latin-1"))
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError) as e:
                if kept is not None and not getattr(e, "partial", b""):
                    raise _Stale from None
                raise
            status, headers, cookies = parse_head(head)
            for c in cookies:
                name, _, value = c.partition("=")
                self.cookies[name] = value
            body, keep = await read_body(reader, headers)
            self.bytes += len(body)
            if status != 200:
                raise HttpError(f"GET {path}: HTTP {status}")
            return body
        finally:
            if keep:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()

    def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


# ------------------------------------------------------------------------- the tab
@dataclass
class Response:
    """One answered request: from sending it to its run's end and its images loaded."""

    seconds: float
    status: str  # the run's ScriptFinishedStatus name
    media: int  # images this request made the tab load
    media_failed: int
    run_seconds: float  # of which: until the run finished (the rest: loading images)


@dataclass
class _Pending:
    sent: float
    fragment_id: str  # "" for a full rerun
    waited: bool  # someone awaits the answer (not so for a timer's tick)
    run_id: str | None = None  # the run that answers it, once it has started
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    fetches: list[asyncio.Task] = field(default_factory=list)

    def answered_by(self, run_fragments: list[str]) -> bool:
        """A full run answers every request; a fragment run only its own fragment's."""
        return not run_fragments or self.fragment_id in run_fragments


@dataclass
class _Cached:
    msg: ForwardMsg
    used_run: int  # the tab's run count when it was last used
    fragment_id: str


@dataclass
class Page:
    script_hash: str
    name: str
    url_path: str  # "" for the default page


class TabClosed(Exception):
    """The websocket closed (by the server or the network)."""


class Tab:
    """One browser tab on a Streamlit app (see the module's docstring).

    Args:
        url: the app's address (loopback only), e.g. ``http://127.0.0.1:8501``.
        timeout: seconds any single request may take before it fails.
        on_error: called with (kind, text) for each error the tab sees: an exception
            element or error alert (``"page"``), an image that failed to load
            (``"media"``), a broken message (``"protocol"``).
    """

    def __init__(self, url: str, timeout: float = 30.0, on_error=None):
        parts = loopback_url(url)
        self.base = f"http://{parts.netloc}"
        self.ws_url = f"ws://{parts.netloc}/_stcore/stream"
        self.timeout = timeout
        self.http = Http(parts.hostname or "127.0.0.1", parts.port or 80)
        self.on_error = on_error or (lambda kind, text: None)
        self.nodes: dict[tuple[int, ...], Node] = {}
        self.states: dict[str, WidgetState] = {}  # widget id -> the state sent with reruns
        self.query: dict[str, str | list[str]] = {}
        self.pages: list[Page] = []
        self.page_hash = ""  # the current page's script hash ("" before the first run)
        self.main_hash = ""  # app.py's
        self.session_id = ""
        self.media_loaded: set[str] = set()
        self.media_count = 0
        self.timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> timer
        self.timer_ticks = 0
        self.runs_finished = 0
        self.updated = asyncio.Event()  # set at each finished run, for watchers
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._run_id = ""
        self._run_fragments: list[str] = []
        self._pending: list[_Pending] = []
        self._cache: dict[str, _Cached] = {}
        self._cache_runs = 0
        self._max_cache_age = 2
        self._favicon = ""
        self._closed: BaseException | None = None

    @property
    def closed(self) -> BaseException | None:
        """Why the websocket closed (None while it is open)."""
        return self._closed

    # ---------------------------------------------------------------- connection
    async def open(self, query: str = "") -> Response:
        """Loads the page as a browser does, connects, and runs the app once."""
        t0 = time.perf_counter()
        for path in ("/", "/_stcore/health", "/_stcore/host-config"):
            await self.http.get(path, self.timeout)
        token = self.http.cookies.get(XSRF_COOKIE, NO_XSRF_TOKEN)
        headers = {"Origin": self.base}
        if self.http.cookies:
            headers["Cookie"] = self.http.cookie_header()
        try:
            self._ws = await connect(
                self.ws_url,
                subprotocols=[Subprotocol("streamlit"), Subprotocol(token)],
                additional_headers=headers,
                ping_interval=None,  # browsers send no pings
                max_size=None,
                open_timeout=self.timeout,
                close_timeout=2,
            )
        except (OSError, WebSocketException, asyncio.TimeoutError) as e:
            raise TabClosed(f"could not open the websocket: {type(e).__name__}: {e}") from None
        self._reader = asyncio.create_task(self._read())
        self.query = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        first = await self.rerun()
        first.seconds = time.perf_counter() - t0  # the page load, as a user waits for it
        return first

    async def close(self) -> None:
        for _, task in self.timers.values():
            task.cancel()
        self.timers.clear()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        for p in self._pending:
            for t in p.fetches:
                t.cancel()
        self.http.close()

    # ------------------------------------------------------------------- requests
    def client_state(self, fragment_id: str = "", auto: bool = False) -> ClientState:
        state = ClientState(
            query_string=urllib.parse.urlencode(sorted(self.query.items()), doseq=True),
            page_script_hash=self.page_hash,
            fragment_id=fragment_id,
            is_auto_rerun=auto,
        )
        state.widget_states.widgets.extend(self.states.values())
        state.cached_message_hashes.extend(self._cache)
        page = next((p for p in self.pages if p.script_hash == self.page_hash), None)
        info = state.context_info
        info.timezone, info.timezone_offset, info.locale = "UTC", 0, "en-US"
        info.url = f"{self.base}/{page.url_path if page else ''}"
        info.is_embedded, info.color_scheme = False, "light"
        return state

    async def rerun(
        self, fragment_id: str = "", auto: bool = False, trigger: str | None = None
    ) -> Response:
        """Sends the tab's state (with ``trigger``, a button's id, pressed once) and
        waits for the run that answers it and for the images it shows.

        Raises:
            TabClosed: the websocket closed.
            TimeoutError: no answer within the tab's timeout.
        """
        state = self.client_state(fragment_id, auto)
        if trigger:
            state.widget_states.widgets.append(WidgetState(id=trigger, trigger_value=True))
        pending = await self._send(state, fragment_id)
        try:
            status = await asyncio.wait_for(asyncio.shield(pending.done), self.timeout)
            run_seconds = time.perf_counter() - pending.sent
            remaining = self.timeout - (time.perf_counter() - pending.sent)
            results = await asyncio.wait_for(
                asyncio.gather(*pending.fetches, return_exceptions=True), max(remaining, 0.1)
            )
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer within {self.timeout:.0f} s") from None
        finally:
            if pending in self._pending:
                self._pending.remove(pending)
        failed = sum(1 for r in results if r is not True)
        return Response(
            time.perf_counter() - pending.sent, status, len(pending.fetches), failed, run_seconds
        )

    async def _send(self, state: ClientState, fragment_id: str, waited: bool = True) -> _Pending:
        """Registers the request (before sending: its answer may be read at once)."""
        if self._closed is not None or self._ws is None:
            raise TabClosed(str(self._closed or "not connected"))
        pending = _Pending(time.perf_counter(), fragment_id, waited)
        self._pending.append(pending)
        try:
            await self._ws.send(BackMsg(rerun_script=state).SerializeToString())
        except Exception as e:
            self._pending.remove(pending)
            raise TabClosed(f"{type(e).__name__}: {e}") from None
        return pending

    async def goto(self, page: Page) -> Response:
        """Client-side navigation to ``page`` (the session stays), as the sidebar's
        links do: the old page's elements, widget states, bound URL parameters and
        timers go; the app script's own (the sidebar) stay."""
        self._stop_timers()
        old = {w.id: w for w in self.widgets()}
        self.nodes = {p: n for p, n in self.nodes.items() if n.script_hash == self.main_hash}
        kept = {w.id for w in self.widgets()}
        self.states = {k: v for k, v in self.states.items() if k in kept}
        gone = {w.query_key for i, w in old.items() if i not in kept and w.query_key}
        self.query = {k: v for k, v in self.query.items() if k not in gone}
        self.page_hash = page.script_hash
        return await self.rerun()

    async def change(self, widget: Widget, state: WidgetState) -> Response:
        """Gives ``widget`` a new state (a bound widget's URL parameter follows) and
        reruns, only the widget's fragment if it is in one."""
        self.states[widget.id] = state
        if widget.query_key:
            self.query[widget.query_key] = url_value(state)
        return await self.rerun(fragment_id=widget.fragment_id)

    async def click(self, widget: Widget) -> Response:
        return await self.rerun(fragment_id=widget.fragment_id, trigger=widget.id)

    # ------------------------------------------------------------------ the page
    def widgets(self) -> list[Widget]:
        """The widgets on the page, in delta-path order (top to bottom)."""
        found = (widget_of(p, n) for p, n in sorted(self.nodes.items()))
        return [w for w in found if w is not None]

    def elements(self, root: int | None = None) -> list[tuple[tuple[int, ...], Node]]:
        return [
            (p, n)
            for p, n in sorted(self.nodes.items())
            if n.element is not None and (root is None or p[0] == root)
        ]

    def texts(self, root: int | None = MAIN) -> list[Item]:
        """The page's elements that have text, top to bottom."""
        found = (item_of(n.element) for _, n in self.elements(root) if n.element)
        return [i for i in found if i.text]

    def images(self, root: int | None = MAIN) -> list[str]:
        return [u for _, n in self.elements(root) if n.element for u in media_urls(n.element)]

    # --------------------------------------------------------------- the answers
    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for payload in self._ws:
                if isinstance(payload, bytes):
                    self.receive(ForwardMsg.FromString(payload))
        except Exception as e:  # a broken frame or the connection: the tab is over
            self._closed = e
        else:
            self._closed = TabClosed("the server closed the websocket")
        finally:
            if self._closed is None:
                self._closed = TabClosed("closed")
            self._stop_timers()
            for p in self._pending:
                if p.done.done():
                    continue
                if p.waited:
                    p.done.set_exception(TabClosed(str(self._closed)))
                else:
                    p.done.cancel()
            self.updated.set()

    def receive(self, msg: ForwardMsg) -> None:
        """Takes in one message from the server (the reader calls it for each)."""
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.on_error("protocol", f"cached message {msg.ref_hash} missing")
                return
            cached.used_run = self._cache_runs
            full = ForwardMsg()
            full.CopyFrom(cached.msg)
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash and msg.hash not in self._cache:
            self._cache[msg.hash] = _Cached(msg, self._cache_runs, msg.delta.fragment_id)
        if kind == "new_session":
            self._new_run(msg)
        elif kind == "delta":
            self._delta(msg)
        elif kind == "script_finished":
            self._finished(msg)
        elif kind == "navigation":
            self.pages = [
                Page(p.page_script_hash, p.page_name, p.url_pathname)
                for p in msg.navigation.app_pages
                if not p.is_hidden
            ]
            if msg.navigation.page_script_hash:
                self.page_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query = dict(
                urllib.parse.parse_qsl(msg.page_info_changed.query_string, keep_blank_values=True)
            )
        elif kind == "page_config_changed":
            icon = msg.page_config_changed.favicon
            if icon.startswith("/media/") and icon != self._favicon:
                self._favicon = icon
                self._fetch(icon)
        elif kind == "auto_rerun":
            self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self._stop_timers(fid)
        elif kind == "session_event":
            if msg.session_event.HasField("script_compilation_exception"):
                e = msg.session_event.script_compilation_exception
                self.on_error("page", f"{e.type}: {e.message}")

    def _new_run(self, msg: ForwardMsg) -> None:
        ns = msg.new_session
        self.session_id = ns.initialize.session_id or self.session_id
        self.main_hash = ns.main_script_hash
        self._max_cache_age = ns.config.max_cached_message_age or self._max_cache_age
        self._run_id = msg.metadata.run.script_run_id
        self._run_fragments = list(msg.metadata.run.fragment_ids)
        if not self._run_fragments:
            self._stop_timers()  # a full run re-registers the timers it still wants
            if ns.page_script_hash and not self.pages:  # else: the navigation message
                self.page_hash = ns.page_script_hash
        for p in self._pending:
            if p.run_id is None and p.answered_by(self._run_fragments):
                p.run_id = self._run_id

    def _delta(self, msg: ForwardMsg) -> None:
        path = tuple(msg.metadata.delta_path)
        delta = msg.delta
        which = delta.WhichOneof("type")
        if not path or which == "new_transient":
            return  # spinners and the like: gone by the run's end
        element = delta.new_element if which == "new_element" else None
        self.nodes[path] = Node(
            element, delta.fragment_id, msg.metadata.active_script_hash, self._run_id
        )
        if element is None:
            return
        state = widget_state(element)
        if state is not None:
            proto = getattr(element, element.WhichOneof("type") or "")
            if getattr(proto, "set_value", False) or state.id not in self.states:
                self.states[state.id] = state
        for url in media_urls(element):
            self._fetch(url)
        if is_error(element):
            self.on_error("page", element_text(element)[:300])

    def _fetch(self, url: str) -> None:
        """Loads an image once, attributed to the requests waiting for their answer."""
        if url in self.media_loaded:
            return
        self.media_loaded.add(url)
        task = asyncio.ensure_future(self._load(url))
        for p in self._pending:
            if not p.done.done():
                p.fetches.append(task)

    async def _load(self, url: str) -> bool:
        try:
            await self.http.get(url, self.timeout)
        except HttpError as e:
            self.media_loaded.discard(url)
            self.on_error("media", str(e))
            return False
        self.media_count += 1
        return True

    def _finished(self, msg: ForwardMsg) -> None:
        status = msg.script_finished
        run = msg.metadata.run
        fragments = list(run.fragment_ids)
        if status in (FINISHED.FINISHED_SUCCESSFULLY, FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
            if fragments or run.script_run_id == self._run_id:
                self._clear_stale(run.script_run_id, fragments)
        if status != FINISHED.FINISHED_EARLY_FOR_RERUN:
            self._age_cache(fragments)
        self.runs_finished += 1
        name = FINISHED.Name(status)
        for p in self._pending:
            if p.run_id != run.script_run_id or p.done.done():
                continue
            if status == FINISHED.FINISHED_EARLY_FOR_RERUN:
                p.run_id = None  # stopped for a newer run: that one answers
            else:
                p.done.set_result(name)
        self.updated.set()

    def _clear_stale(self, run_id: str, fragments: list[str]) -> None:
        """The frontend's clearStaleNodes: what the run did not redraw goes (inside
        its fragments only, for a fragment run), and so do the gone widgets' states."""
        self.nodes = {
            p: n
            for p, n in self.nodes.items()
            if n.run_id == run_id or (fragments and n.fragment_id not in fragments)
        }
        active = {w.id for w in self.widgets()}
        self.states = {k: v for k, v in self.states.items() if k in active}

    def _age_cache(self, fragments: list[str]) -> None:
        self._cache_runs += 1
        for h, c in list(self._cache.items()):
            if fragments and c.fragment_id not in fragments:
                continue
            if self._cache_runs - c.used_run > self._max_cache_age:
                del self._cache[h]

    # -------------------------------------------------------------------- timers
    def _start_timer(self, fragment_id: str, interval: float) -> None:
        if not fragment_id or interval <= 0:
            return
        if fragment_id in self.timers and self.timers[fragment_id][0] == interval:
            return
        self._stop_timers(fragment_id)
        self.timers[fragment_id] = (
            interval,
            asyncio.create_task(self._tick(fragment_id, interval)),
        )

    async def _tick(self, fragment_id: str, interval: float) -> None:
        """``setInterval``: a rerun of the fragment every ``interval`` s, answered or not."""
        while True:
            await asyncio.sleep(interval)
            if self._closed is not None:
                return
            self.timer_ticks += 1
            try:
                pending = await self._send(self.client_state(fragment_id, True), fragment_id, False)
            except TabClosed:
                return
            # nobody waits for a tick's answer; it must not linger in the list
            asyncio.get_running_loop().call_later(self.timeout, self._forget, pending)

    def _forget(self, pending: _Pending) -> None:
        if pending in self._pending:
            self._pending.remove(pending)
            pending.done.cancel()

    def _stop_timers(self, fragment_id: str | None = None) -> None:
        ids: Iterable[str] = list(self.timers) if fragment_id is None else [fragment_id]
        for fid in ids:
            entry = self.timers.pop(fid, None)
            if entry is not None:
                entry[1].cancel()
