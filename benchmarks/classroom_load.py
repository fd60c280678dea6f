"""A class at once, without browsers: N sessions on a real server, M of them training.

Each session is one browser tab played by ``streamlit_client.Tab`` (Streamlit's own
websocket protocol, the page's images fetched over HTTP, fragment timers answered; the
deltas read by ``streamlit_page``). A
**student** visits every page of the app in turn through client-side navigation (the
session stays) and, on each, changes a few of the page's widgets (sliders, select
sliders, select boxes, radio buttons, number inputs, toggles; main area only), waiting
a think time before each step (``--think``, jittered to 0.5-1.5 times). A **trainer**
goes to the Train page, sets small settings (``--train-images``, ``--train-epochs``),
presses "Start training", then keeps watching (the progress fragment's timer reruns
it) until its training is over, and then carries on as a student.

Every step is timed from sending the request to the end of the run that answers it
AND the images that run shows being loaded (``Response.seconds``). Students' and
trainers' steps are reported apart (a trainer's steps after its training count as a
student's). Errors: exception elements, error alerts, images that failed to load, a
websocket that closed, a step without answer within ``--timeout``, and tracebacks in
the log of a server it started itself (``--start-server``). The trainer's state
is read from the page: queued ("Waiting for a free trainer", "place K of N"), running
(a progress bar whose text starts "Epoch"), finished (a success alert with "Done" or
"Stopped early"), refused (a warning with "queue is full" or "already running"),
failed (an error alert "Training failed").

The server's memory and CPU are read from ``/proc``: the processes given with
``--server-pid``, else those listening on ``--server-port`` (default: the URL's port).
Behind a load balancer, name each replica's port (or pid): the balancer's own
processes are not the app.

Safety: loopback servers only (127.0.0.0/8, ::1, localhost); sessions open over
``--ramp`` seconds, no new step starts after ``--duration`` seconds, trainers may watch
``--grace`` seconds more, and at the hard deadline (duration + grace + timeout)
whatever still runs is cancelled; every socket is closed.

    python benchmarks/classroom_load.py --url http://127.0.0.1:8501 --students 40 \\
        --trainers 4 --duration 60 --think 1.5 --json out.json --markdown
    python benchmarks/classroom_load.py --start-server --students 8 --trainers 1 --duration 30

Exit status 1 if there were errors. Not a test (pytest collects only ``test_*.py``);
``tests/test_classroom_load.py`` runs it briefly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from streamlit.proto.WidgetStates_pb2 import WidgetState

# the two modules beside this one, also when it is imported by path (the tests do)
HERE = Path(__file__).resolve().parent
for folder in (str(HERE), str(HERE.parent / "scripts")):  # app_server is an operator's script
    if folder not in sys.path:
        sys.path.insert(0, folder)

import app_server  # noqa: E402
from streamlit_client import HttpError, Page, Tab, TabClosed, loopback_url  # noqa: E402
from streamlit_page import Item, Widget, url_value  # noqa: E402

MOVABLE = {"slider", "select_slider", "selectbox", "radio", "number_input", "toggle", "checkbox"}
ERROR_EXAMPLES = 12  # distinct error messages kept for the report
SLOWEST = 8  # the slowest steps, listed in the report
SAMPLE_S = 0.5  # how often the server's memory is read


# --------------------------------------------------------------------------- figures
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) with linear interpolation between order statistics
    (numpy's default); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict:
    """n, p50, p95 and max of response times (s), rounded to the millisecond."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 3),
        "p95": round(percentile(values, 0.95), 3),
        "max": round(max(values), 3),
    }


# -------------------------------------------------------------- the simulated users
def new_state(
    widget: Widget,
    current: WidgetState | None,
    rng: random.Random,
    avoid: re.Pattern[str] | None = None,
) -> WidgetState:
    """Another value for ``widget`` than ``current``, as a user would pick it: a point
    of a slider's grid (both ends of a range slider, in order), another option, a
    number in range, the other side of a toggle. A select box's or radio's options that
    match ``avoid`` are never picked (e.g. a dataset this server does not have).

    Raises:
        ValueError: the widget has nothing else to choose (one option, one position).
    """
    ws = WidgetState(id=widget.id)
    if widget.kind == "slider" or widget.kind == "number_input":
        steps = int(round((widget.high - widget.low) / widget.step)) if widget.step else 0
        if not math.isfinite(widget.high - widget.low) or steps < 1:
            raise ValueError(f"{widget.label!r} has no range to move in")

        def point() -> float:
            v = widget.low + rng.randint(0, steps) * widget.step
            return float(round(v)) if widget.integer else round(v, 10)

        if widget.kind == "number_input":
            now: float | None = None
            if current and current.HasField("int_value"):
                now = current.int_value
            elif current and current.HasField("double_value"):
                now = current.double_value
            v = point()
            while v == now:
                v = point()
            if widget.integer:
                ws.int_value = int(v)
            else:
                ws.double_value = v
            return ws
        old = list(current.double_array_value.data) if current else []
        values = sorted(point() for _ in range(max(len(old), 1)))
        while values == old:
            values = sorted(point() for _ in range(max(len(old), 1)))
        ws.double_array_value.data.extend(values)
        return ws
    if widget.kind in ("select_slider", "selectbox", "radio"):
        if len(widget.options) < 2:
            raise ValueError(f"{widget.label!r} has one option only")
        if widget.kind == "select_slider":
            old = list(current.string_array_value.data) if current else []
            n = max(len(old), 1)
            indices = sorted(rng.sample(range(len(widget.options)), n))
            choice = [widget.options[i] for i in indices]
            if choice == old:  # one more draw is enough for a 1-in-k chance
                choice = [widget.options[(indices[0] + 1) % len(widget.options)], *choice[1:]]
                choice = sorted(choice, key=widget.options.index)
            ws.string_array_value.data.extend(choice)
            return ws
        chosen = current.string_value if current else None
        others = [o for o in widget.options if o != chosen and not (avoid and avoid.search(o))]
        if not others:
            raise ValueError(f"{widget.label!r} has no other option to pick")
        ws.string_value = rng.choice(others)
        return ws
    if widget.kind in ("toggle", "checkbox"):
        ws.bool_value = not (current.bool_value if current else False)
        return ws
    raise ValueError(f"cannot change a {widget.kind}")


def option_state(widget: Widget, wanted: str) -> WidgetState:
    """A select slider (or select box) set to the option ``wanted``, else to the
    option whose number is nearest to it ("3,000" for 2500)."""

    def number(s: str) -> float:
        try:
            return float(s.replace(",", ""))
        except ValueError:
            return math.inf

    options = widget.options
    pick = (
        wanted if wanted in options else min(options, key=lambda o: abs(number(o) - number(wanted)))
    )
    ws = WidgetState(id=widget.id)
    if widget.kind == "select_slider":
        ws.string_array_value.data.append(pick)
    else:
        ws.string_value = pick
    return ws


@dataclass
class TrainingState:
    state: str  # idle, queued, running, finished, refused, failed
    place: int | None = None  # in the queue
    progress: int | None = None  # 0-100


def training_state(items: Sequence[Item]) -> TrainingState:
    """What the Train page says about this session's training."""
    for it in items:
        if it.kind == "alert.warning" and (
            "queue is full" in it.text or "already running" in it.text
        ):
            return TrainingState("refused")
    for it in items:
        if it.kind == "alert.success" and ("Done" in it.text or "Stopped early" in it.text):
            return TrainingState("finished", progress=100)
        if it.kind == "alert.error" and "Training failed" in it.text:
            return TrainingState("failed")
    for it in items:
        if it.kind == "progress" and it.text.startswith("Epoch"):
            return TrainingState("running", progress=it.value)
    for it in items:
        if "Waiting for a free trainer" in it.text:
            m = re.search(r"place (\d+) of (\d+)", it.text)
            return TrainingState("queued", place=int(m.group(1)) if m else None)
    return TrainingState("idle")


@dataclass
class Training:
    """One trainer's training, as the page showed it."""

    state: str = "idle"
    pressed_s: float | None = None  # since the run's start
    started_s: float | None = None  # first seen running
    finished_s: float | None = None
    queued: bool = False
    max_place: int | None = None
    progress: list[int] = field(default_factory=list)  # distinct values, in order seen

    def see(self, seen: TrainingState, at: float) -> None:
        if seen.state == "idle":
            return
        self.state = seen.state
        if seen.state == "queued":
            self.queued = True
            if seen.place is not None:
                self.max_place = max(self.max_place or 0, seen.place)
        if seen.state in ("running", "finished") and self.started_s is None:
            self.started_s = at
        if seen.state == "finished":
            self.finished_s = at
        if seen.progress is not None and (not self.progress or self.progress[-1] != seen.progress):
            self.progress.append(seen.progress)


@dataclass
class Step:
    role: str  # "student" or "trainer"
    kind: str  # "open", "page", "widget", "start"
    page: str
    seconds: float
    media: int
    end_s: float  # since the run's start
    run_seconds: float  # of which: until the run finished, before the last image came
    what: str = ""  # the widget changed, and to what


class Run:
    """Everything the sessions measure, shared by them (one event loop: no locks)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.avoid = re.compile(args.avoid) if getattr(args, "avoid", None) else None
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()
        self.until = self.t0 + args.duration  # no new step after this
        self.watch_until = self.until + args.grace  # trainers stop watching
        self.steps: list[Step] = []
        self.errors: Counter[str] = Counter()
        self.examples: list[str] = []
        self.trainings: list[Training] = []
        self.timer_ticks = 0
        self.media = 0
        self.media_bytes = 0
        self.sessions_opened = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def error(self, kind: str, text: str) -> None:
        self.errors[kind] += 1
        line = f"{kind}: {text}"
        if len(self.examples) < ERROR_EXAMPLES and line not in self.examples:
            self.examples.append(line)


class Session:
    """One simulated user on one tab."""

    def __init__(self, run: Run, index: int, trainer: bool):
        self.run, self.index, self.is_trainer = run, index, trainer
        self.rng = random.Random(f"{run.args.seed}-{index}")
        self.role = "trainer" if trainer else "student"
        self.tab = Tab(run.args.url, timeout=run.args.timeout, on_error=self._error)
        self.page = ""

    def _error(self, kind: str, text: str) -> None:
        self.run.error(kind, f"session {self.index} on {self.page or 'its first page'}: {text}")

    async def think(self) -> None:
        await asyncio.sleep(self.run.args.think * self.rng.uniform(0.5, 1.5))

    async def step(self, kind: str, action, what: str = "") -> bool:
        """Runs one timed request (``what``: the widget and its new value); False if it
        failed (counted as an error)."""
        try:
            r = await action
        except TimeoutError:
            self._error("timeout", f"{kind}: no answer within {self.run.args.timeout:.0f} s")
            return False
        except HttpError as e:
            self._error("http", f"{kind}: {e}")
            return False
        self.run.steps.append(
            Step(
                self.role, kind, self.page, r.seconds, r.media, self.run.now(), r.run_seconds, what
            )
        )
        return True

    async def main(self) -> None:
        run = self.run
        try:
            if not await self.step("open", self.tab.open()):
                return
            run.sessions_opened += 1
            if self.is_trainer:
                await self.train()
                self.role = "student"
            await self.study()
        except TabClosed as e:
            self._error("closed", f"the websocket closed: {e}")
        except OSError as e:  # could not connect at all
            self._error("connect", f"{type(e).__name__}: {e}")
        finally:
            run.timer_ticks += self.tab.timer_ticks
            run.media += self.tab.media_count
            run.media_bytes += self.tab.http.bytes
            await self.tab.close()

    async def visit(self, page: Page) -> bool:
        self.page = page.name
        return await self.step("page", self.tab.goto(page))

    async def study(self) -> None:
        """Every page in turn (starting at a random one), a few changes on each."""
        pages = list(self.tab.pages)
        if not pages:
            self._error("protocol", "the app sent no pages")
            return
        start = self.rng.randrange(len(pages))
        while True:
            for page in pages[start:] + pages[:start]:
                await self.think()
                if time.monotonic() >= self.run.until:
                    return
                if not await self.visit(page):
                    continue
                for _ in range(self.run.args.moves):
                    await self.think()
                    if time.monotonic() >= self.run.until:
                        return
                    await self.move()

    async def move(self) -> None:
        """Changes one of the page's widgets (main area, enabled) to another value."""
        widgets = [w for w in self.tab.widgets() if w.in_main and not w.disabled]
        self.rng.shuffle(widgets)
        for w in widgets:
            if w.kind not in MOVABLE:
                continue
            try:
                state = new_state(w, self.tab.states.get(w.id), self.rng, self.run.avoid)
            except ValueError:
                continue
            await self.step("widget", self.tab.change(w, state), _what(w, state))
            return

    async def train(self) -> None:
        """The Train page, small settings, Start, then watch until it is over."""
        tab, args = self.tab, self.run.args
        page = next((p for p in tab.pages if p.url_path == "train"), None)
        if page is None:
            self._error("protocol", "the app has no Train page")
            return
        if not await self.visit(page):
            return
        for label, choose in (
            ("Images to use", lambda w: option_state(w, f"{args.train_images:,}")),
            ("Epochs", lambda w: _slider_state(w, args.train_epochs)),
        ):
            w = self._widget(label)
            if w is None:
                self._error("protocol", f"no {label!r} widget on the Train page")
                return
            await self.think()
            state = choose(w)
            await self.step("widget", tab.change(w, state), _what(w, state))
        await self.think()
        button = self._widget("Start training", kind="button")
        if button is None or button.disabled:
            self._error("protocol", "no enabled 'Start training' button")
            return
        training = Training(pressed_s=self.run.now())
        self.run.trainings.append(training)
        if not await self.step("start", tab.click(button)):
            return
        training.see(training_state(tab.texts()), self.run.now())
        while training.state not in ("finished", "refused", "failed"):
            if time.monotonic() >= self.run.watch_until:
                return
            tab.updated.clear()
            try:
                await asyncio.wait_for(tab.updated.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
            if tab.closed is not None:
                raise TabClosed(str(tab.closed))
            training.see(training_state(tab.texts()), self.run.now())

    def _widget(self, label: str, kind: str | None = None) -> Widget | None:
        return next(
            (
                w
                for w in self.tab.widgets()
                if w.in_main and w.label.startswith(label) and (kind is None or w.kind == kind)
            ),
            None,
        )


def _what(widget: Widget, state: WidgetState) -> str:
    return f"{widget.label[:40]} = {url_value(state)}"


def _slider_state(widget: Widget, value: float) -> WidgetState:
    ws = WidgetState(id=widget.id)
    ws.double_array_value.data.append(min(max(value, widget.low), widget.high))
    return ws


# ------------------------------------------------------------------- the server
def listening_inodes(proc_net_tcp: str, port: int) -> set[str]:
    """Socket inodes listening on ``port``, from the text of /proc/net/tcp or tcp6."""
    found = set()
    for line in proc_net_tcp.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or cols[3] != "0A":  # 0A: LISTEN
            continue
        if int(cols[1].rsplit(":", 1)[1], 16) == port:
            found.add(cols[9])
    return found


def pids_listening(ports: Sequence[int]) -> list[int]:
    """The processes that hold a socket listening on one of ``ports`` (all of them:
    forked workers share their parent's socket)."""
    inodes: set[str] = set()
    for name in ("tcp", "tcp6"):
        try:
            text = Path(f"/proc/net/{name}").read_text()
        except OSError:
            continue
        for port in ports:
            inodes |= listening_inodes(text, port)
    links = {f"socket:[{i}]" for i in inodes}
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) in links for fd in (d / "fd").iterdir()):
                pids.append(int(d.name))
        except OSError:  # gone, or not ours to look into
            continue
    return sorted(pids)


def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


class ServerWatch:
    """The server processes' summed RSS every :data:`SAMPLE_S`, and their CPU time."""

    def __init__(self, pids: Sequence[int]):
        self.pids = list(pids)
        self.samples: list[float] = []
        self.start_rss = self._rss()
        self.cpu0 = self._cpu()

    def _rss(self) -> float | None:
        values = [rss_mb(p) for p in self.pids]
        present = [v for v in values if v is not None]
        return sum(present) if present else None

    def _cpu(self) -> float | None:
        values = [app_server.cpu_seconds(p) for p in self.pids]
        present = [v for v in values if v is not None]
        return sum(present) if present else None

    async def sample(self) -> None:
        while True:
            value = self._rss()
            if value is not None:
                self.samples.append(value)
            await asyncio.sleep(SAMPLE_S)

    def report(self, sessions: int, seconds: float) -> dict:
        cpu1 = self._cpu()
        peak = max(self.samples) if self.samples else None
        growth = peak - self.start_rss if peak is not None and self.start_rss is not None else None
        return {
            "pids": self.pids,
            "rss_start_mb": _round(self.start_rss, 1),
            "rss_peak_mb": _round(peak, 1),
            "rss_end_mb": _round(self._rss(), 1),
            "per_session_mb": _round(growth / sessions, 2)
            if growth is not None and sessions
            else None,
            "cpu_cores": _round((cpu1 - self.cpu0) / seconds, 2)
            if cpu1 is not None and self.cpu0 is not None and seconds > 0
            else None,
        }


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


# ---------------------------------------------------------------------- the run
class WarmUpError(Exception):
    pass


async def warm_up(url: str, timeout: float) -> None:
    """One tab visits every page once: what a server does only once (loading data and
    models, caches shared by all sessions) is then not in the figures.

    Raises:
        WarmUpError: a page did not load (with what the tab saw).
    """
    problems: list[str] = []
    tab = Tab(url, timeout=timeout, on_error=lambda kind, text: problems.append(text))
    try:
        await tab.open()
        for page in tab.pages:
            await tab.goto(page)
    except (TimeoutError, HttpError, TabClosed) as e:
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        await tab.close()
    if problems:
        raise WarmUpError(f"the warm-up failed: {problems[0]}")


async def drive(args: argparse.Namespace, pids: Sequence[int]) -> dict:
    """Opens the sessions over the ramp, runs them, and returns the report."""
    if args.warmup:
        await warm_up(args.url, args.timeout)
    run = Run(args)
    watch = ServerWatch(pids)
    sampler = asyncio.create_task(watch.sample())
    n = args.students + args.trainers
    # trainers spread among the students, so that they do not all start first
    trainer_slots = (
        set(round(i * n / args.trainers) for i in range(args.trainers)) if args.trainers else set()
    )
    sessions = [Session(run, i, i in trainer_slots) for i in range(n)]

    async def later(s: Session, delay: float) -> None:
        await asyncio.sleep(delay)
        await s.main()

    ramp = min(10.0, args.duration / 4) if args.ramp is None else min(args.ramp, args.duration)
    tasks = [asyncio.create_task(later(s, ramp * i / max(n, 1))) for i, s in enumerate(sessions)]
    progress = asyncio.create_task(_progress(run)) if not args.quiet else None
    hard = args.duration + args.grace + args.timeout
    done, pending = await asyncio.wait(tasks, timeout=hard)
    for t in pending:  # past the hard deadline: each session's finally closes its tab
        t.cancel()
    if pending:
        run.error("deadline", f"{len(pending)} session(s) still busy at the hard deadline")
        await asyncio.wait(pending, timeout=10)
    for t in done:
        if not t.cancelled() and t.exception() is not None:
            run.error("bug", f"{type(t.exception()).__name__}: {t.exception()}")
    driven = run.now()
    sampler.cancel()
    if progress is not None:
        progress.cancel()
    return report(run, watch, driven)


async def _progress(run: Run) -> None:
    while True:
        await asyncio.sleep(10)
        print(
            f"  {run.now():4.0f} s: {len(run.steps)} steps, {sum(run.errors.values())} errors",
            file=sys.stderr,
        )


def report(run: Run, watch: ServerWatch, driven_s: float) -> dict:
    args = run.args
    timed = [s for s in run.steps if s.kind != "open"]
    # the rate over the time steps were taken in: from the start to the last answer
    window = max((s.end_s for s in run.steps), default=0.0)

    def times(role: str) -> list[float]:
        return [s.seconds for s in timed if s.role == role]

    by_page: dict[str, list[float]] = {}
    for s in timed:
        if s.role == "student":
            by_page.setdefault(s.page, []).append(s.seconds)
    tr = run.trainings
    return {
        "url": args.url,
        "sessions": args.students + args.trainers,
        "sessions_opened": run.sessions_opened,
        "students": args.students,
        "trainers": args.trainers,
        "duration_s": args.duration,
        "driven_s": round(driven_s, 1),
        "think_s": args.think,
        "warmed_up": args.warmup,
        "interactions": len(timed),
        "interactions_per_s": round(len(timed) / window, 2) if window else None,
        "students_response_s": summary(times("student")),
        "students_run_only_s": summary([s.run_seconds for s in timed if s.role == "student"]),
        "trainers_response_s": summary(times("trainer")),
        "page_load_s": summary([s.seconds for s in run.steps if s.kind == "open"]),
        "by_page_s": {page: summary(v) for page, v in by_page.items()},
        "errors": sum(run.errors.values()),
        "errors_by_kind": dict(run.errors),
        "error_examples": run.examples,
        "slowest": [
            f"{s.seconds:.2f} s: {s.role} {s.kind} on {s.page}" + (f" ({s.what})" if s.what else "")
            for s in sorted(timed, key=lambda s: -s.seconds)[:SLOWEST]
        ],
        "media_fetched": run.media,
        "http_bytes": run.media_bytes,
        "timer_ticks": run.timer_ticks,
        "trainings": {
            "pressed": len(tr),
            "started": sum(1 for t in tr if t.started_s is not None),
            "queued": sum(1 for t in tr if t.queued),
            "finished": sum(1 for t in tr if t.state == "finished"),
            "refused": sum(1 for t in tr if t.state == "refused"),
            "failed": sum(1 for t in tr if t.state == "failed"),
            "unfinished": sum(1 for t in tr if t.state in ("idle", "queued", "running")),
            "each": [asdict(t) for t in tr],
        },
        "server": watch.report(args.students + args.trainers, driven_s),
        # this process's own CPU: it shares the machine with the server
        "generator_cpu_cores": round((time.process_time() - run.cpu0) / driven_s, 2)
        if driven_s
        else None,
    }


MARKDOWN_HEADER = (
    "| sessions | trainers | interactions | p50 | p95 | max | trainers' p95 | errors "
    "| interactions/s | trainings started/queued/finished/refused | server CPU (cores) "
    "| peak RSS | RSS per session |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def markdown_row(r: dict) -> str:
    """One row under :data:`MARKDOWN_HEADER` (the capacity table in docs/performance.md)."""

    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f} s"

    def mb(x: float | None) -> str:
        return "-" if x is None else f"{x:,.0f} MB"

    st, tr, t, srv = r["students_response_s"], r["trainers_response_s"], r["trainings"], r["server"]
    cells = [
        str(r["sessions"]),
        str(r["trainers"]),
        f"{r['interactions']:,}",
        s(st["p50"]),
        s(st["p95"]),
        s(st["max"]),
        s(tr["p95"]),
        str(r["errors"]),
        f"{r['interactions_per_s']:.1f}" if r["interactions_per_s"] is not None else "-",
        f"{t['started']}/{t['queued']}/{t['finished']}/{t['refused']}",
        "-" if srv["cpu_cores"] is None else f"{srv['cpu_cores']:.2f}",
        mb(srv["rss_peak_mb"]),
        "-" if srv["per_session_mb"] is None else f"{srv['per_session_mb']:.1f} MB",
    ]
    return "| " + " | ".join(cells) + " |"


# ------------------------------------------------------------------------ CLI
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8501", help="the app (loopback only)")
    p.add_argument(
        "--start-server",
        action="store_true",
        help="start `streamlit run app.py` on a free loopback port for the run (instead of --url)",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the started server (repeatable)",
    )
    p.add_argument("--students", type=int, default=8)
    p.add_argument("--trainers", type=int, default=0)
    p.add_argument("--duration", type=float, default=60, help="seconds of steps")
    p.add_argument(
        "--ramp",
        type=float,
        help="seconds over which the sessions open (default: a quarter of --duration, at most 10)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=30,
        help="seconds after --duration that trainers may keep watching",
    )
    p.add_argument("--think", type=float, default=1.5, help="mean think time (s) before each step")
    p.add_argument("--moves", type=int, default=3, help="widget changes per page visit")
    p.add_argument(
        "--timeout", type=float, default=30, help="seconds a step may take before it is an error"
    )
    p.add_argument("--train-images", type=int, default=3000)
    p.add_argument("--train-epochs", type=int, default=3)
    p.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="a server process to measure (repeatable)",
    )
    p.add_argument(
        "--server-port",
        type=int,
        action="append",
        default=[],
        help="measure the processes listening here (repeatable; default: the URL's port)",
    )
    p.add_argument(
        "--warmup",
        action="store_true",
        help="visit every page once before the run (not measured): a fresh server's "
        "first loads of data and models stay out of the figures",
    )
    p.add_argument("--seed", type=int, default=0, help="of the users' choices")
    p.add_argument(
        "--avoid",
        metavar="REGEX",
        help="never pick a select box or radio option matching this (e.g. CIFAR when "
        "the server has no CIFAR-10: choosing it shows a 'not on this server' alert)",
    )
    p.add_argument("--json", metavar="PATH", help="write the report here (default: stdout)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table row too")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.students < 0 or args.trainers < 0 or args.students + args.trainers < 1:
        p.error("need at least one session")
    if args.duration <= 0 or args.think < 0 or args.timeout <= 0 or args.moves < 0:
        p.error("--duration and --timeout must be positive, --think and --moves not negative")
    if not args.start_server:
        try:
            loopback_url(args.url)
        except ValueError as e:
            p.error(str(e))
    for kv in args.server_env:
        if "=" not in kv:
            p.error(f"--server-env wants KEY=VALUE, not {kv!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    server = None
    if args.start_server:
        env = dict(kv.split("=", 1) for kv in args.server_env)
        log = Path(tempfile.gettempdir()) / f"convae-classroom-{os.getpid()}.log"
        try:
            server = app_server.start(env, log)
        except app_server.ServerError as e:
            print(e, file=sys.stderr)
            return 1
        args.url = server.url
    try:
        pids = args.server_pid or (
            [server.proc.pid]
            if server
            else pids_listening(args.server_port or [loopback_url(args.url).port or 80])
        )
        result = asyncio.run(drive(args, pids))
    except WarmUpError as e:
        print(e, file=sys.stderr)
        return 1
    finally:
        if server is not None:
            app_server.stop(server.proc)
    if server is not None:  # a traceback in its log is an error the pages may not show
        tracebacks = server.log.read_text(errors="replace").count("Traceback")
        result["server_log"] = str(server.log)
        if tracebacks:
            result["errors"] += tracebacks
            result["errors_by_kind"]["server_log"] = tracebacks
            result["error_examples"].append(
                f"server_log: {tracebacks} traceback(s) in {server.log}"
            )
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    else:
        print(text)
    if args.markdown:
        print(MARKDOWN_HEADER)
        print(markdown_row(result))
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
