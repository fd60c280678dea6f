"""The real app in a real browser: every page opens, a slider moves, nothing breaks; and
a malicious checkpoint uploaded the way a visitor does is refused.

Starts ``streamlit run app.py`` on a free port (the ``app_server`` fixture), opens every
page in headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright), moves a
slider with the keyboard, waits for the app to settle, and fails on any exception shown
on the page or any console error from the app. Screenshots of every page go to
``docs/screenshots/`` when ``CONVAE_SCREENSHOTS=1``, else to a temporary folder.

Skipped without Chromium or without MNIST, except when ``$CI`` is set (then it fails).
Models: ``$CONVAE_CHECKPOINT_DIR`` if set, else the repository's ``checkpoints/``
(without any, the app shows untrained models, a valid state for the crawl; the upload
test needs a model from a file to keep).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from hostile import RunsCode, torch_bytes
from support import REPO, wait_until

VIEWPORT = {"width": 1400, "height": 900}
SETTLE_TIMEOUT_MS = 120_000
# A run that an event asks for starts within milliseconds (two key presses on a slider
# are two requests 20-30 ms apart); this long without a message, the page is settled.
QUIET_S = 0.3
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'

# (URL path as routed in app.py, screenshot name, accessible name of a slider, key)
PAGES = [
    ("", "home", "Test image", "ArrowRight"),
    ("explore", "explore", "Noise level", "ArrowRight"),
    ("activations", "activations", re.compile(r"^Channels"), "ArrowLeft"),
    ("compare", "compare", "Noise level", "ArrowRight"),
    ("latent", "latent", re.compile(r"^Position between A"), "ArrowRight"),
    ("limits", "limits", re.compile(r"^Alarm threshold"), "ArrowLeft"),
    # 3 -> 1 epoch: a short run (5 for the docs' screenshot, where it should look trained)
    ("train", "train", re.compile(r"^Epochs"), "ArrowLeft"),
]
# Streamlit's client probes a deep link's folder for its endpoints before the root;
# those two 404s are its own and harmless.
BENIGN_URLS = re.compile(r"/_stcore/(health|host-config)$")
# Streamlit drops a run's media files once a newer run of the same fragment has drawn; an
# image from the older run that the browser had not fetched yet then 404s (streamlit
# issues #4825, #9079). Harmless when the page no longer shows that image: checked below.
MEDIA_URL = re.compile(r"/media/[0-9a-f]+\.\w+")
DOCS_SHOTS = REPO / "docs" / "screenshots"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("CONVAE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SHOTS
    return tmp_path_factory.mktemp("screenshots")


def screenshot(page, path: Path, settle_ms: int = 0) -> None:
    """A PNG of the viewport; for docs/ reduced to 256 colours (about a third the size,
    no visible change on these flat UI pictures), and taken ``settle_ms`` after a scroll
    or a pointer move, so that the picture shows the new view fully drawn."""
    if path.parent == DOCS_SHOTS:
        page.wait_for_timeout(settle_ms)
    page.screenshot(path=str(path))
    if path.parent == DOCS_SHOTS:
        from PIL import Image

        with Image.open(path) as im:
            small = im.convert("RGB").quantize(
                256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
            )
        small.save(path, optimize=True)


class Runs:
    """The script runs a page asks the server for, and the ends of those runs, read off
    the page's websocket: a fast run can begin and end between two looks at the page,
    these messages cannot (``benchmarks/browser_load.py`` times runs the same way)."""

    def __init__(self, page):
        self.events: list[tuple[float, str]] = []  # (time, "asked" | "ended")
        page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        def sent(payload):
            if (
                isinstance(payload, bytes)
                and BackMsg.FromString(payload).WhichOneof("type") == "rerun_script"
            ):
                self.events.append((time.monotonic(), "asked"))

        def received(payload):
            if not isinstance(payload, bytes) or len(payload) > 1000:  # not the big deltas
                return
            msg = ForwardMsg.FromString(payload)
            # a run cut short by a rerun is not an end: the rerun is still to come
            if (
                msg.WhichOneof("type") == "script_finished"
                and msg.script_finished != ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
            ):
                self.events.append((time.monotonic(), "ended"))

        ws.on("framesent", sent)
        ws.on("framereceived", received)

    def mark(self) -> int:
        """Where the events stand now: pass it to ``settle`` after an action."""
        return len(self.events)

    def over(self, since: int) -> bool:
        """A run was asked for after event ``since``, the last one asked for has ended,
        and nothing has happened for QUIET_S."""
        events = self.events[since:]
        asked = [i for i, (_, kind) in enumerate(events) if kind == "asked"]
        return (
            bool(asked)
            and any(kind == "ended" for _, kind in events[asked[-1] :])
            and time.monotonic() - events[-1][0] >= QUIET_S
        )


def settle(page, runs: Runs, since: int = 0) -> None:
    """Wait until the runs asked for since ``runs`` stood at ``since`` are over, and the
    page has drawn them: it says no script is running, and every image has loaded."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_MS / 1000
    while not runs.over(since):
        if time.monotonic() > deadline:
            pytest.fail(f"no run ended within {SETTLE_TIMEOUT_MS / 1000:.0f} s: {runs.events}")
        page.wait_for_timeout(50)  # lets Playwright deliver the websocket's messages
    page.wait_for_selector(DONE, timeout=SETTLE_TIMEOUT_MS)
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=SETTLE_TIMEOUT_MS
    )
    page.wait_for_load_state("networkidle")


def test_every_page_opens_and_a_slider_moves_without_errors(browser, app_server, shots):
    server = app_server.url
    context = browser.new_context(viewport=VIEWPORT)
    problems: list[str] = []
    try:
        for path, name, slider_name, key in PAGES:
            page = context.new_page()
            stale_media: list[str] = []

            def on_console(m, name=name, stale_media=stale_media, problems=problems):
                if m.type != "error":
                    return
                text = f"{m.text} {m.location.get('url', '')}"
                if BENIGN_URLS.search(m.location.get("url", "")):
                    return
                if media := MEDIA_URL.search(text):
                    stale_media.append(media.group())
                    return
                problems.append(f"{name}: console {m.text[:300]} ({m.location.get('url', '')})")

            page.on("console", on_console)
            page.on(
                "pageerror",
                lambda e, name=name, problems=problems: problems.append(f"{name}: page {e}"),
            )
            runs = Runs(page)
            page.goto(f"{server}/{path}")
            settle(page, runs)
            assert page.locator("h1").first.inner_text().strip(), f"{name}: no title"
            screenshot(page, shots / f"{name}.png")

            main = page.locator('[data-testid="stMain"]')
            thumb = main.get_by_role("slider", name=slider_name).last
            before = thumb.get_attribute("aria-valuetext")
            if name == "train" and shots == DOCS_SHOTS:
                key = "ArrowRight"
            thumb.focus()
            since = runs.mark()
            page.keyboard.press(key)
            page.keyboard.press(key)
            settle(page, runs, since)
            after = thumb.get_attribute("aria-valuetext")
            assert after != before, f"{name}: the slider did not move ({before})"
            exceptions = page.locator('[data-testid="stException"]')
            if exceptions.count():
                problems.append(
                    f"{name}: exception on the page: {exceptions.first.inner_text()[:500]}"
                )
            if name == "compare":  # the view the README wants: decoders' own patterns
                page.get_by_text("Checkerboard artifacts").first.evaluate(
                    "e => e.scrollIntoView({block: 'start'})"
                )
                screenshot(page, shots / "compare-checkerboard.png", settle_ms=500)
            if name == "train":  # a short run to its end: the loss curve and samples
                since = runs.mark()
                main.get_by_role("button", name="Start training").click()
                main.get_by_text("It is now the current model").wait_for(timeout=SETTLE_TIMEOUT_MS)
                settle(page, runs, since)
                main.get_by_text("It is now the current model").evaluate(
                    "e => e.scrollIntoView({block: 'start'})"
                )
                page.mouse.move(5, 5)  # no chart toolbar from a hovering pointer
                screenshot(page, shots / "train.png", settle_ms=300)
            shown = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.src, e.complete && e.naturalWidth > 0])"
            )
            problems += [f"{name}: broken image {src}" for src, ok in shown if not ok]
            problems += [
                f"{name}: media file missing but still shown: {url}"
                for url in stale_media
                if any(url in src for src, _ in shown)
            ]
            errors = page.locator('[data-testid="stAlertContentError"]')
            if errors.count():
                problems.append(f"{name}: error message: {errors.first.inner_text()[:300]}")
            page.close()
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_a_malicious_checkpoint_uploaded_in_the_browser_is_refused(browser, app_server, tmp_path):
    """AppTest sets the uploader's value directly; this goes the way a visitor does: the
    browser puts a crafted torch zip (its pickle would run ``touch MARKER``) into the
    sidebar's ``input[type=file]`` and sends it to the server, and the page must say that
    it was refused, show no exception, keep the model, and run nothing. Needs a
    checkpoint for the sidebar's first choice (MNIST, conv-upsample): the shipped set has
    one."""
    from playwright.sync_api import expect

    from convae.nn.checkpoint import FORMAT

    marker = tmp_path / "MARKER"
    evil = torch_bytes({"format": FORMAT, "format_version": 1, "model": RunsCode(marker)})
    log_start = len(app_server.output())
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(app_server.url)
        page.wait_for_selector(DONE, timeout=SETTLE_TIMEOUT_MS)
        sidebar = page.locator('[data-testid="stSidebar"]')
        current = page.get_by_role("heading", name="One image through the current model")
        expect(current).to_contain_text(".pt", timeout=SETTLE_TIMEOUT_MS)  # a file's model
        model = current.inner_text()
        sidebar.get_by_text("Upload a checkpoint (.pt)").click()
        uploader = sidebar.locator('[data-testid="stExpander"]', has_text="Upload a checkpoint")
        uploader.locator('input[type="file"]').set_input_files(
            {"name": "evil.pt", "mimeType": "application/octet-stream", "buffer": evil}
        )
        message = sidebar.get_by_text("evil.pt was not loaded")
        expect(message).to_be_visible(timeout=SETTLE_TIMEOUT_MS)
        page.wait_for_selector(DONE, timeout=SETTLE_TIMEOUT_MS)
        assert "could run code when loaded, so it was refused" in message.inner_text()
        assert page.locator('[data-testid="stException"]').count() == 0
        expect(current).to_have_text(model)  # the model is unchanged
    finally:
        page.close()
    assert not marker.exists(), "the upload ran code on the server"
    assert "Traceback" not in app_server.output(log_start)


def _metric_values(page) -> list[str]:
    return page.locator('[data-testid="stMain"] [data-testid="stMetricValue"]').all_inner_texts()


def test_a_copied_link_reopens_the_same_view_in_a_new_browser(browser, app_server, shots):
    """Move sliders, copy the address, open it in a fresh browser context (no shared
    session, no cookies): the same sliders and the same PSNR/SSIM figures."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    other = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        runs = Runs(page)
        page.goto(f"{app_server.url}/explore")
        settle(page, runs)
        main = page.locator('[data-testid="stMain"]')
        for name, presses in (("Noise level", 3), ("How many", 2)):
            mark = runs.mark()
            main.get_by_role("slider", name=name).last.focus()
            for _ in range(presses):
                page.keyboard.press("ArrowRight")
            settle(page, runs, mark)
        mark = runs.mark()
        main.get_by_role("button", name="New").click()  # another random draw
        settle(page, runs, mark)
        url = page.url
        assert "explore_level=0.45" in url and "explore_count=10" in url, url
        assert "explore_draw=1" in url, url
        level = main.get_by_role("slider", name="Noise level").last.get_attribute("aria-valuetext")
        main.locator('[data-testid="stMetricValue"]').nth(5).wait_for(timeout=SETTLE_TIMEOUT_MS)
        figures = _metric_values(page)
        assert len(figures) == 6  # noisy, model, PCA, median, total variation, non-local means

        copy = other.new_page()
        copy_runs = Runs(copy)
        copy.goto(url)
        settle(copy, copy_runs)
        copied = copy.locator('[data-testid="stMain"]')
        assert (
            copied.get_by_role("slider", name="Noise level").last.get_attribute("aria-valuetext")
            == level
        )
        # the cards come last in their fragment: under load they can still be drawing
        copied.locator('[data-testid="stMetricValue"]').nth(len(figures) - 1).wait_for(
            timeout=SETTLE_TIMEOUT_MS
        )
        assert _metric_values(copy) == figures
        assert copy.locator('[data-testid="stException"]').count() == 0

        # the share control: the same link, and a QR code of it
        mark = runs.mark()
        page.locator('[data-testid="stSidebar"]').get_by_role(
            "button", name=re.compile("Share this view")
        ).click()
        settle(page, runs, mark)
        dialog = page.locator('[data-testid="stDialog"]')
        dialog.locator("img").first.wait_for()
        shared = dialog.locator('[data-testid="stCode"] code').first.inner_text()
        assert shared.replace("\n", "") == url
        # this server listens on 127.0.0.1 only: the link stays, and the dialog says why
        assert "--server.address 0.0.0.0" in dialog.get_by_role("alert").first.inner_text()
        assert dialog.locator("img").count() == 1
        screenshot(page, shots / "share.png", settle_ms=300)
        page.keyboard.press("Escape")

        # presenter mode, as a link opens it: the model's output on the first screen
        mark = copy_runs.mark()
        copy.goto(url + "&present=1")
        settle(copy, copy_runs, mark)
        box = copy.get_by_text("Model output", exact=True).first.bounding_box()
        assert box is not None and box["y"] + box["height"] < 720, box
        assert copy.get_by_role("switch", name="Presenter mode").is_checked()
        copy.mouse.move(5, 5)
        screenshot(copy, shots / "presenter.png", settle_ms=300)
    finally:
        context.close()
        other.close()


def phone(browser):
    """A phone-sized touch screen: 390x844 CSS pixels, twice as many device pixels."""
    return browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )


def test_on_a_phone_the_sidebar_is_folded_and_the_picture_comes_first(browser, app_server, shots):
    context = phone(browser)
    try:
        page = context.new_page()
        runs = Runs(page)
        page.goto(f"{app_server.url}/explore?explore_level=0.5")
        settle(page, runs)
        sidebar = page.locator('[data-testid="stSidebar"]').bounding_box()
        assert sidebar is None or sidebar["x"] + sidebar["width"] <= 1, sidebar  # folded away
        title = page.locator("h1").first.bounding_box()
        picture = page.locator(".st-key-main_picture img").first.bounding_box()
        noise = page.get_by_text("Noise level", exact=True).first.bounding_box()
        assert title and picture and noise
        assert title["y"] < picture["y"] < noise["y"]  # right under the title
        assert picture["y"] < 844
        screenshot(page, shots / "phone.png", settle_ms=300)
    finally:
        context.close()


# ------------------------------------------------------------------- drawing a digit
PAD = "canvas.upper-canvas"  # the drawing pad's top canvas takes the pointer's strokes
SEVEN = [(70, 60), (210, 60), (190, 110), (160, 170), (130, 240)]  # in pad pixels
BAR = [(110, 150), (220, 150)]


def draw_with_mouse(page, points) -> None:
    """One stroke through ``points`` (pad pixels): press, move in small steps, release."""
    box = page.locator(PAD).first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        for k in range(1, 11):
            page.mouse.move(box["x"] + ax + (bx - ax) * k / 10, box["y"] + ay + (by - ay) * k / 10)
    page.mouse.up()


def draw_with_finger(page, points) -> None:
    """The same stroke as a touch screen sends it (Chromium's own touch events)."""
    box = page.locator(PAD).first.bounding_box()
    assert box is not None
    cdp = page.context.new_cdp_session(page)

    def touch(kind, x=None, y=None):
        where = [] if x is None else [{"x": box["x"] + x, "y": box["y"] + y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": where})

    touch("touchStart", *points[0])
    for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
        for k in range(1, 11):
            touch("touchMove", ax + (bx - ax) * k / 10, ay + (by - ay) * k / 10)
    touch("touchEnd")
    cdp.detach()


def pictures(page) -> list[str]:
    return page.locator(".st-key-main_picture img").evaluate_all("els => els.map(e => e.src)")


def new_pictures(page, n: int, other: list[str] | None = None) -> list[str]:
    """The page's ``n`` pictures once they are all there (and not ``other``): the
    browser mounts them one by one after the run that made them."""
    found: list[str] = []

    def ready() -> bool:
        nonlocal found
        found = pictures(page)
        return len(found) == n and found != other

    wait_until(ready, timeout=SETTLE_TIMEOUT_MS / 1000)
    return found


def test_a_digit_drawn_with_the_mouse_is_reconstructed_and_undo_takes_a_stroke_back(
    browser, app_server, shots
):
    """Mouse down, move, up on the pad: the model's reconstruction of the drawing
    appears; a second stroke changes it; undo brings back the first picture (media URLs
    are content hashes), the pad's own toolbar's undo as well as the page's button;
    clearing the pad says it is empty. No request leaves the server's own address."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})  # pad to output
    outside: list[str] = []
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith((app_server.url, "data:", "blob:"))
            else (outside.append(route.request.url), route.abort())
        ),
    )
    try:
        page = context.new_page()
        runs = Runs(page)
        page.goto(f"{app_server.url}/explore?explore_source=Draw+your+own")
        settle(page, runs)
        main = page.locator('[data-testid="stMain"]')
        main.get_by_text("Nothing drawn yet").wait_for()
        assert not pictures(page)
        page.locator(PAD).first.scroll_into_view_if_needed()

        mark = runs.mark()
        draw_with_mouse(page, SEVEN)
        settle(page, runs, mark)
        main.get_by_text("Model output", exact=True).wait_for()
        seven = new_pictures(page, 7)
        # the drawing, noisy, the model's output, PCA, median, total variation, non-local means
        assert len(seven) == 7
        assert main.get_by_text("what the model gets (28x28)").count() == 1

        mark = runs.mark()
        draw_with_mouse(page, BAR)
        settle(page, runs, mark)
        crossed = new_pictures(page, 7, seven)
        assert crossed != seven and len(crossed) == 7

        mark = runs.mark()
        main.get_by_role("button", name="Undo", exact=True).click()  # the pad's toolbar
        settle(page, runs, mark)
        assert wait_until(lambda: pictures(page) == seven, SETTLE_TIMEOUT_MS / 1000), (
            "undo should bring back the first stroke's pictures"
        )

        mark = runs.mark()
        draw_with_mouse(page, BAR)
        settle(page, runs, mark)
        assert wait_until(lambda: pictures(page) == crossed, SETTLE_TIMEOUT_MS / 1000)
        mark = runs.mark()
        main.get_by_role("button", name="Undo stroke").click()  # the page's, for any pointer
        settle(page, runs, mark)
        assert wait_until(lambda: pictures(page) == seven, SETTLE_TIMEOUT_MS / 1000)
        page.mouse.move(5, 5)
        page.get_by_text("Images", exact=True).first.evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        screenshot(page, shots / "draw.png", settle_ms=400)

        mark = runs.mark()
        main.get_by_role("button", name="Clear", exact=True).click()
        settle(page, runs, mark)
        main.get_by_text("The pad is empty").wait_for()
        assert not pictures(page)
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        context.close()
    assert not outside, f"requests to other hosts: {outside}"


def test_on_a_phone_a_finger_draws_and_the_activations_follow(browser, app_server, shots):
    context = phone(browser)
    try:
        page = context.new_page()
        runs = Runs(page)
        page.goto(f"{app_server.url}/activations?act_source=Your+drawing")
        settle(page, runs)
        pad = page.locator(PAD).first
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box  # fits the screen
        mark = runs.mark()
        draw_with_finger(page, SEVEN)
        settle(page, runs, mark)
        heading = page.get_by_text("The journey of your drawing")
        heading.wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0
        page.locator(".stPlotlyChart").first.wait_for()
        seen = page.locator('[data-testid="stMain"] [data-testid="stImage"] img').first
        seven = seen.get_attribute("src")  # what the model gets: a content-hashed PNG
        mark = runs.mark()
        draw_with_finger(page, BAR)
        settle(page, runs, mark)
        assert seen.get_attribute("src") != seven
        mark = runs.mark()
        page.get_by_role("button", name="Undo stroke").tap()  # no toolbar without a hover
        settle(page, runs, mark)
        assert seen.get_attribute("src") == seven
        heading.wait_for()
        page.get_by_text("Input", exact=True).first.evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        screenshot(page, shots / "draw-phone.png", settle_ms=400)
    finally:
        context.close()


def test_the_learned_filters_and_the_model_as_code_are_drawn(browser, app_server, shots):
    """The filters section draws both models' kernels and the histogram; Home's code
    tabs show the plain PyTorch source and the loading lines, each with a copy button."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        runs = Runs(page)
        page.goto(f"{app_server.url}/activations")
        settle(page, runs)
        section = page.get_by_text("Learned filters: the patterns each layer looks for")
        section.evaluate("e => e.scrollIntoView({block: 'start'})")
        main = page.locator('[data-testid="stMain"]')
        main.get_by_text("The same architecture, untrained (random start)").wait_for()
        # strip, channels, 2 kernels, histogram (plotly mounts each chart as it comes)
        expect(main.locator(".stPlotlyChart")).to_have_count(5, timeout=SETTLE_TIMEOUT_MS)
        page.mouse.move(5, 5)
        screenshot(page, shots / "filters.png", settle_ms=500)

        page.goto(app_server.url)
        settle(page, runs, runs.mark())
        page.get_by_text("Inside the model").first.evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        page.get_by_role("tab", name="As plain PyTorch code").click()
        code = page.locator('[data-testid="stCode"]').nth(1)
        code.wait_for()
        assert '("conv1", nn.Conv2d(1, 16' in code.inner_text()
        page.mouse.move(5, 5)
        screenshot(page, shots / "code.png", settle_ms=400)
        page.get_by_role("tab", name="Load this model").click()
        loading = page.locator('[data-testid="stCode"]').nth(2)
        assert 'resolve_path("mnist-conv-upsample")' in loading.inner_text()
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        context.close()


def test_a_click_on_empty_space_of_the_latent_map_decodes_that_point(browser, app_server, shots):
    """Plotly reports clicks on points only: the map's invisible grid makes empty space a
    point too. On the 2-value model's map (the code itself), a click near the bottom-right
    corner (no test image there) must put that spot's coordinates in the inputs and show
    the decoder's image for exactly that code."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        runs = Runs(page)
        page.goto(f"{app_server.url}/latent?arch=conv-2d&model=mnist-conv-2d")
        settle(page, runs)
        assert page.get_by_text("the point is the code").count() == 1
        plot = page.locator(".st-key-latent_map .js-plotly-plot")
        x_range, y_range = plot.evaluate(
            "p => [p._fullLayout.xaxis.range, p._fullLayout.yaxis.range]"
        )
        area = page.locator(".st-key-latent_map .nsewdrag").first.bounding_box()
        assert area is not None
        fx, fy = 0.97, 0.96  # of the plot area, from its top-left
        want_x = x_range[0] + fx * (x_range[1] - x_range[0])
        want_y = y_range[1] - fy * (y_range[1] - y_range[0])
        decoded = page.get_by_text(re.compile(r"^decoded at \("))
        assert decoded.first.inner_text() == "decoded at (0.00, 0.00)"
        picture = (
            page.locator('[data-testid="stImage"]')
            .filter(has_text=re.compile(r"^decoded at"))
            .locator("img")
        )
        before = picture.first.get_attribute("src")

        mark = runs.mark()
        page.mouse.move(area["x"] + fx * area["width"], area["y"] + fy * area["height"])
        page.mouse.click(area["x"] + fx * area["width"], area["y"] + fy * area["height"])
        settle(page, runs, mark)
        x = float(page.locator(".st-key-latent_x input").input_value())
        y = float(page.locator(".st-key-latent_y input").input_value())
        # the nearest grid point: the grid has 40 x 30 points over the axes' box
        assert abs(x - want_x) <= (x_range[1] - x_range[0]) / 39, (x, want_x)
        assert abs(y - want_y) <= (y_range[1] - y_range[0]) / 29, (y, want_y)
        assert decoded.first.inner_text() == f"decoded at ({x:.2f}, {y:.2f})"
        assert page.get_by_text("from its full code").count() == 0  # no test image hit
        after = picture.first.get_attribute("src")
        assert after and after != before
        shown = page.eval_on_selector_all(
            "img", "els => els.map(e => e.complete && e.naturalWidth > 0)"
        )
        assert all(shown)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.mouse.move(5, 5)
        screenshot(page, shots / "latent-click.png", settle_ms=300)
        page.get_by_text("The map of decodings").first.evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        screenshot(page, shots / "latent-decodings.png", settle_ms=500)
    finally:
        page.close()


def test_the_alarm_threshold_moves_the_detection_figures(browser, app_server, shots):
    """What it cannot reconstruct: the threshold slider, moved with the keyboard, changes
    the false alarms and detection rate, and the ROC AUC (all thresholds) stays."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        runs = Runs(page)
        page.goto(f"{app_server.url}/limits")
        settle(page, runs)
        cards = page.locator('[data-testid="stMain"] [data-testid="stMetric"]')

        def figures() -> dict[str, str]:
            return {
                c.locator('[data-testid="stMetricLabel"]').inner_text().strip(): c.locator(
                    '[data-testid="stMetricValue"]'
                ).inner_text()
                for c in cards.all()
            }

        cards.filter(has_text="ROC AUC").wait_for(timeout=SETTLE_TIMEOUT_MS)
        before = figures()
        assert before["False alarms"] == "5.0%"
        page.get_by_text("Can the error spot images it never learned?").first.evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        thumb = page.get_by_role("slider", name=re.compile(r"^Alarm threshold"))
        thumb.focus()
        mark = runs.mark()
        for _ in range(30):  # 95.0 -> 92.0
            page.keyboard.press("ArrowLeft")
        settle(page, runs, mark)
        after = figures()
        assert after["False alarms"] == "8.0%", after
        assert float(after["Detected"].rstrip("%")) >= float(before["Detected"].rstrip("%"))
        assert after["ROC AUC"] == before["ROC AUC"]
        assert page.locator('[data-testid="stException"]').count() == 0
        page.mouse.move(5, 5)
        screenshot(page, shots / "limits-unknown.png", settle_ms=500)
        page.evaluate("window.scrollTo(0, 0)")
        page.locator('[data-testid="stMain"]').evaluate("e => e.scrollTo(0, 0)")
        screenshot(page, shots / "limits.png", settle_ms=500)
    finally:
        page.close()


def test_training_step_by_step_in_the_browser(browser, app_server, shots):
    """Each click on Step is one optimizer step: the step's number, its loss, its batch
    and the watched filter appear and change, and the page raises nothing."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        runs = Runs(page)
        page.goto(f"{app_server.url}/train")
        settle(page, runs)
        main = page.locator('[data-testid="stMain"]')
        step = main.get_by_role("button", name="Step", exact=True)
        for n in (1, 2, 3):
            since = runs.mark()
            step.click()
            settle(page, runs, since)
            main.get_by_text(f"Step {n} (pass 1): loss").wait_for(timeout=SETTLE_TIMEOUT_MS)
        assert main.get_by_text("How filter 0 of").count() == 1
        assert main.get_by_text("vs the step before").count() == 1
        assert page.locator('[data-testid="stException"]').count() == 0
        main.get_by_text("Step 3 (pass 1): loss").evaluate(
            "e => e.scrollIntoView({block: 'center'})"  # 'start' hides it under the header
        )
        page.mouse.move(5, 5)
        screenshot(page, shots / "step.png", settle_ms=400)
    finally:
        context.close()
