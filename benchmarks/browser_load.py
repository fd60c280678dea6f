"""Many people at once: N browser sessions on one real server, one of them training.

Starts ``streamlit run app.py`` on 127.0.0.1 (loopback only) and opens N sessions at
once in one headless Chromium (one browser context each, driven with asyncio). Every
session visits every page through the sidebar's links (a reload would be a new session)
and moves the page's sliders with the keyboard; each move is timed from the key press
until the run it asked for has finished (the app's own ``rerun_script`` and
``script_finished`` messages on the websocket: exact even for runs too fast to show).
Meanwhile session 0 starts a small training run on the Train page. At the end:

- no exception element on any page, in any session;
- isolation: session 0's sidebar lists the model it trained, no other session does;
  each session's slider kept the value that session gave it;
- slider response p50 / p95 / max, and the error count;
- the server's resident memory (``VmRSS`` sampled every 0.5 s): peak, after the
  warm-up (the first round of pages) and at the end.

Every wait is bounded and the whole run stops by itself (``--deadline`` for the page
visits, then at most two minutes for the final checks). Prints a
Markdown table; exit status 1 if there were errors or the isolation checks failed.

    python benchmarks/browser_load.py [--sessions 8]

Needs Playwright and Chromium (``/usr/bin/chromium``). Not a test: it lives outside
``tests/`` and its name matches neither of pytest's ``test_*.py`` and ``*_test.py``, so
pytest never collects it, even when pointed at ``benchmarks/``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import app_server  # noqa: E402  (scripts/app_server.py: the one way the app is started)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# sidebar link -> text of the page's title (to know the new page has replaced the old)
PAGES = {
    "Home": "What does an autoencoder do",
    "Denoise & explore": "Denoise & explore",
    "Activations": "Activations",
    "Compare models": "Compare models",
    "Latent space": "Latent space",
    "Train": "Train your own",
}
WAIT_MS = 60_000  # the longest any single step may take before it counts as an error
MAX_SLIDERS = 3  # per page: the page's first sliders (main area only)
SESSION_MODEL = re.compile(r"^#\d+ ")  # labels of a session's own models ("#1 3 epoch(s)")

NO_RERUN_S = 5  # a key press that asks for no rerun in this long changed nothing

# --server-timing: the same `streamlit run app.py`, with each script run's wall time and
# its thread's CPU time appended to a file (to tell work from waiting for the CPU/GIL)
TIMED_SERVER = r"""
import sys, time
from streamlit.runtime.scriptrunner import script_runner
log = open(sys.argv.pop(1), "a", buffering=1)
run_script = script_runner.ScriptRunner._run_script
def timed(self, rerun_data):
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        return run_script(self, rerun_data)
    finally:
        log.write(f"{time.perf_counter() - t0:.4f} {time.thread_time() - c0:.4f}\n")
script_runner.ScriptRunner._run_script = timed
from streamlit.web.cli import main
sys.argv = ["streamlit", *sys.argv[1:]]
main()
"""


@dataclass
class Session:
    index: int
    moves: list[float] = field(default_factory=list)  # seconds per slider move
    where: list[str] = field(default_factory=list)  # the page of each move
    server: list[float] = field(default_factory=list)  # of which: request sent -> finished
    errors: list[str] = field(default_factory=list)
    # the app's own messages on the websocket: (time, "user_rerun" | "auto_rerun" |
    # "finished"); a fast run can begin and end between two DOM updates, these cannot
    events: list[tuple[float, str]] = field(default_factory=list)

    def watch(self, ws) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        def sent(payload):
            if isinstance(payload, bytes):
                msg = BackMsg.FromString(payload)
                if msg.WhichOneof("type") == "rerun_script":
                    auto = msg.rerun_script.is_auto_rerun
                    self.events.append(
                        (time.perf_counter(), "auto_rerun" if auto else "user_rerun")
                    )

        def received(payload):
            if isinstance(payload, bytes) and len(payload) < 1000:  # not the big deltas
                msg = ForwardMsg.FromString(payload)
                if (
                    msg.WhichOneof("type") == "script_finished"
                    and msg.script_finished
                    != ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
                ):
                    self.events.append((time.perf_counter(), "finished"))

        ws.on("framesent", sent)
        ws.on("framereceived", received)

    model_options: list[str] = field(default_factory=list)
    trained: bool = False
    slider_ok: bool = True
    wall: float = 0.0  # seconds from opening the page to the end of its checks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class RssSampler(threading.Thread):
    """The server's VmRSS every 0.5 s, read from /proc (MB)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.done = pid, [], threading.Event()

    def rss_mb(self) -> float | None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
        return int(m.group(1)) / 1024 if m else None

    def run(self) -> None:
        while not self.done.wait(0.5):
            value = self.rss_mb()
            if value is not None:
                self.samples.append((time.monotonic(), value))


async def settle(page) -> None:
    await page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=WAIT_MS
    )


async def check_exceptions(page, s: Session, where: str) -> None:
    n = await page.locator('[data-testid="stException"]').count()
    if n:
        text = await page.locator('[data-testid="stException"]').first.inner_text()
        s.errors.append(f"{where}: exception on the page: {text[:300]}")


async def goto_page(page, s: Session, name: str) -> bool:
    """Client-side navigation through the sidebar (keeps the session)."""
    try:
        link = page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name)
        await link.first.click(timeout=WAIT_MS)
        await page.locator("h1", has_text=PAGES[name]).first.wait_for(timeout=WAIT_MS)
        await settle(page)
        return True
    except Exception as e:  # a timeout here is an error of the app under load
        s.errors.append(f"{name}: navigation failed: {type(e).__name__}: {str(e)[:200]}")
        return False


async def move_slider(page, s: Session, thumb, where: str, key: str = "ArrowRight") -> bool:
    """One key press on a slider thumb; records how long the app took to answer."""
    try:  # Streamlit's sliders are <input type="range"> elements
        if await thumb.is_disabled():
            return False
        now, top = await thumb.input_value(), await thumb.get_attribute("max")
        if now is not None and top is not None and float(now) >= float(top):
            key = "ArrowLeft"
        await thumb.focus(timeout=WAIT_MS)
        mark, t0 = len(s.events), time.perf_counter()
        await page.keyboard.press(key)
        # from the key press until the run it asked for has finished
        while time.perf_counter() - t0 < WAIT_MS / 1000:
            events = s.events[mark:]
            ask = next((i for i, (_, kind) in enumerate(events) if kind == "user_rerun"), None)
            if ask is None and time.perf_counter() - t0 > NO_RERUN_S:
                return False  # the value did not change (e.g. at the end of its range)
            done = (
                None
                if ask is None
                else next((t for t, kind in events[ask + 1 :] if kind == "finished"), None)
            )
            if done is not None:
                s.moves.append(done - t0)
                s.server.append(done - events[ask][0])
                s.where.append(where)
                await settle(page)
                return True
            await asyncio.sleep(0.01)
        s.errors.append(f"{where}: no rerun finished within {WAIT_MS / 1000:.0f} s")
        return False
    except Exception as e:
        s.errors.append(f"{where}: slider move failed: {type(e).__name__}: {str(e)[:200]}")
        return False


async def model_options(page) -> list[str]:
    """The labels in the sidebar's "Model (weights)" list (opened, read, closed)."""
    await settle(page)
    box = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model (weights)")
    await box.click(timeout=WAIT_MS)
    options = page.get_by_role("option")
    await options.first.wait_for(timeout=WAIT_MS)
    labels = [t.strip() for t in await options.all_inner_texts()]
    await page.keyboard.press("Escape")
    return labels


async def start_training(page, s: Session) -> None:
    """Session 0: a small run (1,000 images, 2 epochs) on the Train page."""
    if not await goto_page(page, s, "Train"):
        return
    main = page.locator('[data-testid="stMain"]')
    try:
        images = main.get_by_role("slider", name=re.compile("^Images to use"))
        epochs = main.get_by_role("slider", name=re.compile("^Epochs"))
        await images.focus()
        await page.keyboard.press("ArrowLeft")  # 3,000 -> 1,000 images
        await settle(page)
        await epochs.focus()
        await page.keyboard.press("ArrowLeft")  # 3 -> 2 epochs
        await page.wait_for_timeout(300)
        await settle(page)
        await main.get_by_role("button", name=re.compile("Start training")).click()
        # running (its Stop button) or already finished (the "Keep this model" part)
        started = main.get_by_role("button", name=re.compile("Stop")).or_(
            main.get_by_text("Keep this model")
        )
        await started.first.wait_for(timeout=WAIT_MS)
        await settle(page)
    except Exception as e:
        s.errors.append(f"Train: could not start training: {type(e).__name__}: {e}"[:300])


async def session_run(
    browser, url: str, s: Session, rounds: int, deadline: float, round_done: list[int]
) -> None:
    opened = time.monotonic()
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda e: s.errors.append(f"page error: {str(e)[:200]}"))
    page.on("websocket", s.watch)
    try:
        await page.goto(url, timeout=WAIT_MS)
        await settle(page)
        await page.locator("h1").first.wait_for(timeout=WAIT_MS)
        if s.index == 0:
            await start_training(page, s)
        # isolation of settings: each session gives the Home slider its own value
        if await goto_page(page, s, "Home"):
            thumb = page.locator('[data-testid="stMain"]').get_by_role("slider").first
            for _ in range(s.index + 1):
                await move_slider(page, s, thumb, "Home")
            await page.wait_for_timeout(500)
            value = await thumb.input_value()
            s.slider_ok = value == str(s.index + 1)
            if not s.slider_ok:
                s.errors.append(f"Home slider shows {value}, this session set {s.index + 1}")
        for r in range(rounds):
            for name in PAGES:
                if time.monotonic() > deadline:
                    return
                if not await goto_page(page, s, name):
                    continue
                await check_exceptions(page, s, name)
                main = page.locator('[data-testid="stMain"]')
                count = min(await main.get_by_role("slider").count(), MAX_SLIDERS)
                for i in range(count):
                    thumb = main.get_by_role("slider").nth(i)
                    for _ in range(2):
                        if time.monotonic() > deadline:
                            return
                        # a page may change its sliders (a rerun, a finished training)
                        if await main.get_by_role("slider").count() <= i:
                            break
                        await move_slider(page, s, thumb, f"{name} slider {i}")
                await check_exceptions(page, s, name)
            round_done[r] += 1
        # the trained model: session 0 waits (bounded) for it, then everyone looks
        if s.index == 0:  # its own bound, past the deadline: this check must happen
            limit = time.monotonic() + 120
            while time.monotonic() < limit:
                labels = await model_options(page)
                if any(SESSION_MODEL.match(x) for x in labels):
                    break
                await page.wait_for_timeout(2000)
        s.model_options = await model_options(page)
        s.trained = any(SESSION_MODEL.match(x) for x in s.model_options)
        await check_exceptions(page, s, "end")
    except Exception as e:
        s.errors.append(f"session {s.index}: {type(e).__name__}: {str(e)[:300]}")
    finally:
        s.wall = time.monotonic() - opened
        await context.close()


async def drive(
    url: str, n: int, rounds: int, deadline: float, warm_mark: list[float]
) -> list[Session]:
    from playwright.async_api import async_playwright

    sessions = [Session(i) for i in range(n)]
    round_done = [0] * rounds

    async def mark_warm():  # the moment every session has finished its first round
        while round_done[0] < n and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        warm_mark.append(time.monotonic())

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            await asyncio.gather(
                mark_warm(),
                *(session_run(browser, url, s, rounds, deadline, round_done) for s in sessions),
            )
        finally:
            await browser.close()
    return sessions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="visits of every page")
    parser.add_argument("--deadline", type=float, default=300, help="seconds, all in all")
    parser.add_argument(
        "--checkpoints",
        help="CONVAE_CHECKPOINT_DIR for the server (default: the repository's checkpoints/)",
    )
    parser.add_argument(
        "--server-timing",
        action="store_true",
        help="also time every script run inside the server (wall and CPU)",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the browsers (and this script) at this niceness, the "
        "server at the normal one: as if the visitors' browsers ran "
        "on their own machines (timings become an upper bound)",
    )
    parser.add_argument(
        "--server-cpus",
        type=int,
        default=0,
        help="pin the server to this many CPUs and the browsers (and this "
        "script) to the others: as if the visitors' browsers ran on "
        "their own machines and the server had that many cores",
    )
    args = parser.parse_args(argv)
    all_cpus = sorted(os.sched_getaffinity(0))
    if args.server_cpus and not 0 < args.server_cpus < len(all_cpus):
        raise SystemExit(
            f"--server-cpus must leave the browsers at least one of the {len(all_cpus)} CPUs"
        )
    server_cpus = set(all_cpus[: args.server_cpus])
    browser_cpus = set(all_cpus[args.server_cpus :])
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found (apt-get install chromium)")
    env = dict(os.environ)
    if not env.get("CONVAE_DATA_DIR"):
        shared = ROOT.parent / "shared" / "datasets"
        if shared.is_dir():
            env["CONVAE_DATA_DIR"] = str(shared)
    if args.checkpoints:
        env["CONVAE_CHECKPOINT_DIR"] = str(Path(args.checkpoints).resolve())
    port = app_server.free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"convae-load-test-{port}.log"
    start = time.monotonic()
    timing_path = log_path.with_suffix(".runs")
    timing_path.unlink(missing_ok=True)
    launcher = (
        [sys.executable, "-c", TIMED_SERVER, str(timing_path)] if args.server_timing else None
    )
    try:
        started = app_server.start(
            env,
            log_path,
            port=port,
            launcher=launcher,
            # before Python starts: every thread of the server inherits the mask
            preexec_fn=(lambda: os.sched_setaffinity(0, server_cpus)) if server_cpus else None,
        )
    except app_server.ServerError as e:
        raise SystemExit(str(e)) from None
    server, url = started.proc, started.url
    if server_cpus:
        os.sched_setaffinity(0, browser_cpus)  # the browsers, launched later, inherit it
    sampler = RssSampler(server.pid)
    sampler.start()
    warm_mark: list[float] = []
    try:
        if args.nice:
            os.nice(args.nice)  # after the server started: it keeps the normal priority
        deadline = time.monotonic() + args.deadline
        cpu0, t_drive = app_server.cpu_seconds(server.pid), time.monotonic()
        sessions = asyncio.run(drive(url, args.sessions, args.rounds, deadline, warm_mark))
        cpu1, t_drive = app_server.cpu_seconds(server.pid), time.monotonic() - t_drive
        time.sleep(2)  # one more sample once every browser has gone
    finally:
        end_rss = sampler.rss_mb()
        sampler.done.set()
        app_server.stop(server)
    wall = time.monotonic() - start

    moves = [m for s in sessions for m in s.moves]
    errors = [f"session {s.index}: {e}" for s in sessions for e in s.errors]
    trainer, others = sessions[0], sessions[1:]
    if not trainer.trained:
        errors.append("session 0 does not list the model it trained")
    leaked = [s.index for s in others if s.trained]
    if leaked:
        errors.append(f"sessions {leaked} list a model trained by another session")
    rss = [v for _, v in sampler.samples]
    warm_at = warm_mark[0] if warm_mark else None
    after_warm = [v for t, v in sampler.samples if warm_at and t >= warm_at]
    log_text = log_path.read_text(errors="replace")
    tracebacks = log_text.count("Traceback")
    if tracebacks:
        errors.append(f"{tracebacks} traceback(s) in the server log {log_path}")

    def fmt(x: float) -> str:
        return f"{x:.2f} s"

    print()
    print(
        "| sessions | slider moves | p50 | p95 | max | errors | peak RSS MB "
        "| RSS after warm-up MB | RSS at end MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    times = (
        [fmt(statistics.median(moves)), fmt(percentile(moves, 0.95)), fmt(max(moves))]
        if moves
        else ["-"] * 3
    )
    cells = [
        str(len(sessions)),
        str(len(moves)),
        *times,
        str(len(errors)),
        f"{max(rss):.0f}" if rss else "-",
        f"{after_warm[0]:.0f}" if after_warm else "-",
        f"{end_rss:.0f}" if end_rss is not None else "-",
    ]
    print("| " + " | ".join(cells) + " |")
    print()
    print(
        f"Isolation: session 0 lists its trained model: {trainer.trained}; other sessions "
        f"listing it: {len(leaked)} of {len(others)}; every session kept its own slider "
        f"value: {all(s.slider_ok for s in sessions)}."
    )
    if after_warm:
        print(
            f"RSS after the warm-up (first round of pages by every session): "
            f"{after_warm[0]:.0f} MB -> max {max(after_warm):.0f} MB -> end "
            f"{after_warm[-1]:.0f} MB."
        )
    by_place: dict[str, list[float]] = {}
    for sess in sessions:
        for w, m in zip(sess.where, sess.moves, strict=True):
            by_place.setdefault(w, []).append(m)
    print(
        "\nPer slider: "
        + "; ".join(
            f"{w}: n={len(v)}, p50 {statistics.median(v):.2f} s, max {max(v):.2f} s"
            for w, v in by_place.items()
        )
        + "."
    )
    server_part = [x for sess in sessions for x in sess.server]
    if server_part:
        print(
            f"Of each move, from the browser's rerun request to the finished run: p50 "
            f"{statistics.median(server_part):.2f} s, p95 {percentile(server_part, 0.95):.2f}"
            " s (the rest is the browser: slider debounce, its own CPU)."
        )
    if args.server_timing and timing_path.exists():
        runs = [
            tuple(map(float, line.split()))
            for line in timing_path.read_text().split("\n")
            if line.strip()
        ]
        walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
        if runs:
            print(
                f"Inside the server, {len(runs)} script runs: wall p50 "
                f"{statistics.median(walls):.2f} s, p95 {percentile(walls, 0.95):.2f} s; "
                f"CPU of the run's thread p50 {statistics.median(cpus):.3f} s, p95 "
                f"{percentile(cpus, 0.95):.3f} s."
            )
    if cpu0 is not None and cpu1 is not None:
        print(
            f"Server CPU: {cpu1 - cpu0:.0f} s in {t_drive:.0f} s of driving "
            f"({(cpu1 - cpu0) / t_drive:.0%} of one core); machine load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end."
        )
    if server_cpus:
        print(f"CPUs: server on {sorted(server_cpus)}, browsers on {sorted(browser_cpus)}.")
    print(f"Wall time {wall:.0f} s; server log: {log_path}")
    print(
        "Per session (moves, errors, wall s): "
        + ", ".join(f"#{x.index}: {len(x.moves)}, {len(x.errors)}, {x.wall:.0f}" for x in sessions)
    )
    if not trainer.trained:
        print(f"Session 0's model list: {trainer.model_options}")
    for e in errors[:30]:
        print(f"- {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
