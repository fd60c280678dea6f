"""The browser-less load generator (``benchmarks/classroom_load.py`` on
``benchmarks/streamlit_client.py``): its pure parts without a server (percentiles, the
loopback guard, what the deltas say, which run answers a request, the trainer's state
read from the page), then a real server (the ``app_server`` fixture): a slider's new
value reaches the app and brings new images, and a short classroom run with a trainer
whose training really runs to its end.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re

import classroom_load as load
import pytest
import streamlit_client as client
import streamlit_page as page
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED = ForwardMsg.ScriptFinishedStatus


# ------------------------------------------------------------------ figures, guards
def test_percentiles_interpolate_like_numpy():
    values = [4.0, 1.0, 3.0, 2.0]
    assert load.percentile(values, 0.5) == pytest.approx(2.5)
    assert load.percentile(values, 0.95) == pytest.approx(3.85)
    assert load.percentile([7.0], 0.95) == 7.0
    assert math.isnan(load.percentile([], 0.5))
    assert load.summary([0.1, 0.3, 0.2]) == {"n": 3, "p50": 0.2, "p95": 0.29, "max": 0.3}
    assert load.summary([])["n"] == 0


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8501", "http://127.9.8.7:1", "http://[::1]:8501", "http://localhost:80"],
)
def test_loopback_urls_are_accepted(url):
    assert client.loopback_url(url).port


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8501",
        "http://0.0.0.0:8501",  # every interface, not loopback
        "http://example.com:8501",
        "http://127.0.0.1.example.com:8501",  # a name, never resolved
        "http://[::ffff:8.8.8.8]:8501",
        "https://127.0.0.1:8501",
        "ws://127.0.0.1:8501",
        "http://127.0.0.1:99999",
    ],
)
def test_other_hosts_are_refused_before_anything_connects(url, capsys):
    with pytest.raises(ValueError):
        client.loopback_url(url)
    with pytest.raises(SystemExit) as e:
        load.parse_args(["--url", url, "--duration", "1"])
    assert e.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_listening_sockets_are_found_in_proc_net_tcp():
    text = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 0100007F:2161 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 4242 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:2161 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0 "
        "       0 4343 1 0000000000000000 20 4 30 10 -1\n"
        "   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 "
        "       0 4444 1 0000000000000000 100 0 0 10 0\n"
    )
    assert load.listening_inodes(text, 0x2161) == {"4242"}  # not the connected socket
    assert load.listening_inodes(text, 22) == {"4444"}
    assert load.listening_inodes(text, 8080) == set()


def test_http_heads_and_chunked_bodies_are_read():
    status, headers, cookies = client.parse_head(
        b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\nSet-Cookie: a=1; Path=/\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    assert (status, headers["content-type"], cookies) == (200, "image/png", ["a=1"])

    async def body() -> tuple[bytes, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        return await client.read_body(reader, headers)

    assert asyncio.run(body()) == (b"abcde", True)
    with pytest.raises(client.HttpError):
        client.parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")


# -------------------------------------------------------------- what deltas say
def new_session(run_id: str, fragments=()) -> ForwardMsg:
    m = ForwardMsg()
    m.new_session.main_script_hash = "app"
    m.metadata.run.script_run_id = run_id
    m.metadata.run.fragment_ids.extend(fragments)
    return m


def delta(path, element: Element, fragment: str = "", script: str = "page") -> ForwardMsg:
    m = ForwardMsg()
    m.metadata.delta_path.extend(path)
    m.metadata.active_script_hash = script
    m.delta.new_element.CopyFrom(element)
    m.delta.fragment_id = fragment
    return m


def finished(run_id: str, status, fragments=()) -> ForwardMsg:
    m = ForwardMsg(script_finished=status)
    m.metadata.run.script_run_id = run_id
    m.metadata.run.fragment_ids.extend(fragments)
    return m


def slider(id: str, default: list[float], **kw) -> Element:
    return Element(slider=Slider(id=id, label=id, default=default, type=Slider.SLIDER, **kw))


def select_slider(id: str, options: list[str], default: int) -> Element:
    return Element(
        slider=Slider(
            id=id, label=id, options=options, default=[default], type=Slider.SELECT_SLIDER
        )
    )


class FakeSocket:
    def __init__(self):
        self.sent = []

    async def send(self, payload: bytes) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        self.sent.append(BackMsg.FromString(payload).rerun_script)


def offline_tab() -> tuple[client.Tab, list, list]:
    """A tab fed by hand: its sent messages, its image loads and its errors recorded."""
    errors: list = []
    tab = client.Tab("http://127.0.0.1:1", on_error=lambda k, t: errors.append((k, t)))
    loads: list[str] = []

    async def get(path: str, timeout: float) -> bytes:
        loads.append(path)
        return b""

    tab.http.get = get  # type: ignore[method-assign]
    tab._ws = FakeSocket()  # type: ignore[assignment]
    return tab, loads, errors


def test_deltas_build_the_page_and_a_finished_run_drops_what_it_did_not_redraw():
    async def scenario():
        tab, loads, errors = offline_tab()
        tab.receive(new_session("r1"))
        tab.receive(delta([1, 0], slider("side", [1]), script="app"))  # the sidebar
        tab.receive(delta([0, 0], slider("level", [0.3], min=0, max=1, step=0.1)))
        tab.receive(delta([0, 1], select_slider("size", ["300", "1,000", "3,000"], 1)))
        imgs = Element()
        imgs.imgs.imgs.add(url="/media/a.png", caption="a")
        tab.receive(delta([0, 2], imgs))
        tab.receive(delta([0, 2, 0], Element()))  # an empty slot inside
        alert = Element()
        alert.alert.body, alert.alert.format = "Boom", alert.alert.Format.ERROR
        tab.receive(delta([0, 3], alert))
        tab.receive(delta([0, 4], slider("inner", [2], min=0, max=9), fragment="F"))
        tab.receive(finished("r1", FINISHED.FINISHED_SUCCESSFULLY))
        await asyncio.sleep(0)  # the image load runs
        assert [w.id for w in tab.widgets()] == ["level", "size", "inner", "side"]
        assert list(tab.states["level"].double_array_value.data) == [0.3]
        assert list(tab.states["size"].string_array_value.data) == ["1,000"]
        assert tab.images() == ["/media/a.png"] and loads == ["/media/a.png"]
        assert errors == [("page", "Boom")]
        assert [w.fragment_id for w in tab.widgets() if w.id == "inner"] == ["F"]

        # a fragment run that draws nothing: only the fragment's element goes
        tab.receive(new_session("r2", ["F"]))
        tab.receive(finished("r2", FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY, ["F"]))
        assert [w.id for w in tab.widgets()] == ["level", "size", "side"]
        assert "inner" not in tab.states

        # a full run that redraws the slider with a value the server set
        tab.receive(new_session("r3"))
        again = slider("level", [0.3], min=0, max=1, step=0.1)
        again.slider.value[:], again.slider.set_value = [0.7], True
        tab.receive(delta([0, 0], again))
        tab.receive(finished("r3", FINISHED.FINISHED_SUCCESSFULLY))
        assert [w.id for w in tab.widgets()] == ["level"]
        assert list(tab.states["level"].double_array_value.data) == [0.7]
        assert tab.images() == [] and loads == ["/media/a.png"]  # loaded once only

    asyncio.run(scenario())


def test_cached_messages_are_announced_and_references_resolved():
    tab, _, errors = offline_tab()
    tab.receive(new_session("r1"))
    big = delta([0, 0], slider("cached", [4], min=0, max=9))
    big.hash, big.metadata.cacheable = "h1", True
    tab.receive(big)
    tab.receive(finished("r1", FINISHED.FINISHED_SUCCESSFULLY))
    assert list(tab.client_state().cached_message_hashes) == ["h1"]
    tab.receive(new_session("r2"))
    ref = ForwardMsg(ref_hash="h1")
    ref.metadata.delta_path.extend([0, 3])
    tab.receive(ref)
    tab.receive(finished("r2", FINISHED.FINISHED_SUCCESSFULLY))
    assert [w.path for w in tab.widgets()] == [(0, 3)] and not errors
    tab.receive(ForwardMsg(ref_hash="unknown"))
    assert errors and errors[0][0] == "protocol"


def test_a_request_is_answered_by_the_first_run_that_starts_after_it_and_completes():
    async def scenario():
        tab, _, _ = offline_tab()
        tab.pages = [client.Page("home", "Home", ""), client.Page("train", "Train", "train")]
        tab.page_hash, tab.query = "train", {"b": "2", "a": "1"}
        w = page.Widget(
            id="w",
            kind="slider",
            label="w",
            path=(0, 0),
            fragment_id="",
            script_hash="page",
            disabled=False,
            high=1.0,
            step=0.5,
            query_key="level",
        )
        state = load.new_state(w, None, random.Random(0))
        task = asyncio.create_task(tab.change(w, state))
        await asyncio.sleep(0)
        sent = tab._ws.sent[-1]  # type: ignore[union-attr]
        assert sent.page_script_hash == "train" and not sent.fragment_id
        assert sent.query_string.startswith("a=1&b=2&level=")
        assert sent.context_info.url.endswith("/train")
        assert [s.id for s in sent.widget_states.widgets] == ["w"]
        tab.receive(new_session("r1"))
        tab.receive(finished("r1", FINISHED.FINISHED_EARLY_FOR_RERUN))
        tab.receive(new_session("r2", ["other"]))  # another fragment: not the answer
        tab.receive(finished("r2", FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY, ["other"]))
        await asyncio.sleep(0)
        assert not task.done()
        tab.receive(new_session("r3"))
        tab.receive(finished("r3", FINISHED.FINISHED_SUCCESSFULLY))
        response = await asyncio.wait_for(task, 1)
        assert response.status == "FINISHED_SUCCESSFULLY"

    asyncio.run(scenario())


# --------------------------------------------------------- the simulated users
def test_new_values_stay_on_the_widgets_grid_and_differ():
    rng = random.Random(1)
    level = page.Widget(
        id="l",
        kind="slider",
        label="l",
        path=(0,),
        fragment_id="",
        script_hash="",
        disabled=False,
        low=0.05,
        high=1.0,
        step=0.05,
    )
    current = None
    for _ in range(50):
        state = load.new_state(level, current, rng)
        (v,) = state.double_array_value.data
        assert 0.05 <= v <= 1.0 and abs(round(v / 0.05) * 0.05 - v) < 1e-9
        assert current is None or list(current.double_array_value.data) != [v]
        current = state
    both = load.new_state(level, WidgetState(id="l", double_array_value={"data": [0.1, 0.2]}), rng)
    low, high = both.double_array_value.data
    assert low <= high
    size = page.Widget(
        id="s",
        kind="select_slider",
        label="s",
        path=(0,),
        fragment_id="",
        script_hash="",
        disabled=False,
        options=("300", "1,000"),
    )
    now = load.option_state(size, "300")
    assert list(load.new_state(size, now, rng).string_array_value.data) == ["1,000"]
    data = page.Widget(
        id="d",
        kind="selectbox",
        label="Dataset",
        path=(0,),
        fragment_id="",
        script_hash="",
        disabled=False,
        options=("MNIST", "Fashion-MNIST", "CIFAR-10"),
    )
    avoid = re.compile("CIFAR")
    picks = {load.new_state(data, None, rng, avoid).string_value for _ in range(30)}
    assert picks == {"MNIST", "Fashion-MNIST"}  # a dataset the server lacks is never picked
    only = load.new_state(data, WidgetState(id="d", string_value="Fashion-MNIST"), rng, avoid)
    assert only.string_value == "MNIST"
    assert list(load.option_state(size, "900").string_array_value.data) == ["1,000"]
    only = page.Widget(
        id="o",
        kind="selectbox",
        label="o",
        path=(0,),
        fragment_id="",
        script_hash="",
        disabled=False,
        options=("one",),
    )
    with pytest.raises(ValueError):
        load.new_state(only, None, rng)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([("alert.info", "No training yet in this session.")], ("idle", None, None)),
        ([("alert.info", "Waiting for a free trainer: place 3 of 5")], ("queued", 3, None)),
        ([("progress", "Epoch 2/3 · step 4/16", 40)], ("running", None, 40)),
        ([("alert.success", "**Done** after 2 s: test PSNR 20 dB")], ("finished", None, 100)),
        ([("alert.success", "**Stopped early** after 1 s")], ("finished", None, 100)),
        (
            [("alert.warning", "2 trainings are already running on this server.")],
            ("refused", None, None),
        ),
        ([("alert.warning", "The queue is full (8 waiting).")], ("refused", None, None)),
        ([("alert.error", "Training failed: out of memory")], ("failed", None, None)),
    ],
)
def test_the_trainers_state_is_read_from_the_page(items, expected):
    seen = load.training_state([page.Item(*i) for i in items])
    assert (seen.state, seen.place, seen.progress) == expected


def test_the_markdown_row_fits_its_header():
    report = {
        "sessions": 3,
        "trainers": 1,
        "interactions": 1234,
        "interactions_per_s": 2.5,
        "students_response_s": load.summary([0.1, 0.2]),
        "trainers_response_s": load.summary([]),
        "errors": 0,
        "trainings": {"started": 1, "queued": 0, "finished": 1, "refused": 0},
        "server": {"cpu_cores": 0.5, "rss_peak_mb": 1200.0, "per_session_mb": 30.0},
    }
    row = load.markdown_row(report)
    header = load.MARKDOWN_HEADER.splitlines()[0]
    assert row.count("|") == header.count("|")
    assert "1,234" in row and "1/0/1/0" in row and "0.15 s" in row


# ------------------------------------------------------------- a real server
def test_a_slider_move_reaches_the_app_and_brings_new_images(app_server):
    async def scenario():
        errors: list = []
        tab = client.Tab(app_server.url, timeout=60, on_error=lambda k, t: errors.append((k, t)))
        try:
            opened = await tab.open()
            assert opened.status == "FINISHED_SUCCESSFULLY" and tab.pages
            home = next(w for w in tab.widgets() if w.label == "Test image")
            before = tab.images()
            captions = [t.text for t in tab.texts() if "PSNR" in t.text]
            state = load.new_state(home, tab.states[home.id], random.Random(3))
            moved = await tab.change(home, state)
            after = tab.images()
            assert moved.status == "FINISHED_SUCCESSFULLY"
            assert set(after).isdisjoint(before), "a new test image shows new pictures"
            assert moved.media >= len(after) and moved.media_failed == 0
            assert set(after) <= tab.media_loaded
            assert (await tab.http.get(after[0], 10)).startswith(b"\x89PNG")
            assert tab.query["home_index"] == page.url_value(state)
            assert [t.text for t in tab.texts() if "PSNR" in t.text] != captions

            # a widget inside a fragment reruns that fragment only
            explore = next(p for p in tab.pages if p.url_path == "explore")
            await tab.goto(explore)
            level = next(w for w in tab.widgets() if w.label == "Noise level")
            assert level.fragment_id
            before = tab.images()
            state = load.new_state(level, tab.states[level.id], random.Random(4))
            moved = await tab.change(level, state)
            assert moved.status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"
            assert set(tab.images()) != set(before) and moved.media > 0
            assert not errors
        finally:
            await tab.close()

    asyncio.run(scenario())


def test_a_short_classroom_run_with_a_trainer(app_server, tmp_path):
    out = tmp_path / "report.json"
    argv = ["--url", app_server.url, "--students", "2", "--trainers", "1"]
    argv += ["--warmup", "--duration", "10", "--ramp", "1", "--think", "0.3", "--moves", "2"]
    argv += ["--train-images", "300", "--train-epochs", "2", "--json", str(out), "--quiet"]
    code = load.main(argv)
    report = json.loads(out.read_text())
    assert report["errors"] == 0, report["error_examples"]
    assert code == 0
    assert report["sessions"] == report["sessions_opened"] == 3
    assert report["interactions"] >= 10 and report["interactions_per_s"] > 0
    students = report["students_response_s"]
    assert students["n"] > 0 and 0 < students["p50"] <= students["p95"] <= students["max"]
    assert report["trainers_response_s"]["n"] >= 3  # the page, two settings, Start
    assert len(report["by_page_s"]) >= 3 and report["media_fetched"] > 0
    trainings = report["trainings"]
    assert (trainings["pressed"], trainings["started"], trainings["finished"]) == (1, 1, 1)
    (training,) = trainings["each"]
    assert training["progress"] == sorted(training["progress"]) and training["progress"][-1] == 100
    assert training["pressed_s"] <= training["started_s"] <= training["finished_s"]
    server = report["server"]
    assert server["pids"] and server["rss_peak_mb"] > 100 and server["cpu_cores"] > 0
    for key in ("p50", "p95", "max"):
        assert key in students
    assert load.markdown_row(report).startswith("| 3 | 1 |")


@pytest.mark.slow
def test_a_fresh_server_answers_a_class_arriving_at_once_on_every_page_without_an_error(
    data_root, tmp_path
):
    """Twelve sessions open a server that has served nobody yet, within a fifth of a
    second, and go through every page: their threads import the app's libraries at
    once, which handed one of them a half-imported module before ui/warm.py."""
    from support import REPO, streamlit_server

    env = {"CONVAE_DATA_DIR": str(data_root), "CONVAE_CHECKPOINT_DIR": str(REPO / "checkpoints")}
    out = tmp_path / "report.json"
    with streamlit_server(env, tmp_path / "server.log") as url:
        argv = ["--url", url, "--students", "12", "--ramp", "0.2", "--duration", "15"]
        argv += ["--think", "0.05", "--moves", "1", "--json", str(out), "--quiet"]
        code = load.main(argv)
    report = json.loads(out.read_text())
    assert report["errors"] == 0, report["error_examples"]
    assert code == 0 and report["sessions_opened"] == 12
    assert len(report["by_page_s"]) >= 7, report["by_page_s"].keys()  # every page was opened
