"""Setup shared by the test modules: where the data is, a copy of it, what "unchanged"
means for a folder, a real Streamlit server (started by ``scripts/app_server.py``) and
an in-process app.

The fixtures built on these live in ``conftest.py``; modules import from here only what
they call directly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from convae.data.datasets import DATASETS

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
BENCHMARKS = REPO / "benchmarks"
for _folder in (SCRIPTS, BENCHMARKS):  # the launch helper; the load generator
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))
import app_server  # noqa: E402

APP_TIMEOUT_S = 120  # per AppTest script run; the first one of a process loads MNIST


# ------------------------------------------------------------------------------ data
def data_folder() -> Path | None:
    """Where the datasets are: ``$CONVAE_DATA_DIR``, else ``../shared/datasets`` next to
    the repository, else the app's own default ``./data``; None when none of them exists."""
    env = os.environ.get("CONVAE_DATA_DIR")
    if env:
        return Path(env)
    candidates = [REPO.parent / "shared" / "datasets", REPO / "data"]
    return next((p for p in candidates if p.is_dir()), None)


def missing(reason: str) -> None:
    """Skip the test, or fail it when ``$CI`` is set: CI must never pass by skipping."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a test that lacks what it needs must not be skipped)")
    pytest.skip(reason)


def require_dataset(root: Path | None, name: str) -> Path:
    """``root`` if it holds the files of dataset ``name``; skips (fails in CI) otherwise."""
    if root is None:
        missing("no data folder: set CONVAE_DATA_DIR or provide ../shared/datasets")
    absent = [f for f in DATASETS[name].files if not (root / f).is_file()]
    if absent:
        missing(f"{name} is not in {root} (missing {', '.join(absent)})")
    return root


def copy_mnist(data_root: Path, to: Path) -> Path:
    """A writable private copy of MNIST's four official archives in ``to`` (the data
    folder is never written to).

    Only the archives: where torchvision has extracted them beside themselves (as its own
    download does), the loader rightly reads the extracted files, and a test that damages
    an archive would then find nothing wrong. The copy is the same on every machine."""
    for name in DATASETS["mnist"].files:
        (to / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_root / name, to / name)
    for p in [to, *to.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return to


def tree_snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Size, mtime and mode of ``folder`` and of everything below it: what writing,
    adding or deleting anywhere in it would change (a folder's mtime moves when an entry
    is added or removed). One ``stat`` per entry: data folders hold 60,000 files."""

    def entry(st: os.stat_result) -> tuple[int, int, int]:
        return st.st_size, st.st_mtime_ns, st.st_mode

    out = {".": entry(folder.stat())}
    pending = [(folder, "")]
    while pending:
        where, prefix = pending.pop()
        with os.scandir(where) as entries:
            for e in entries:
                out[prefix + e.name] = entry(e.stat())
                if e.is_dir():
                    pending.append((Path(e.path), f"{prefix}{e.name}/"))
    return out


# ------------------------------------------------------------------------- the app
def wait_until(condition, timeout: float = 60.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@contextlib.contextmanager
def streamlit_server(env: dict[str, str], log: Path, start_timeout_s: float = 90) -> Iterator[str]:
    """``streamlit run app.py`` on a free loopback port, with ``env`` added to this
    process's environment and its output in ``log``; yields the URL once it answers."""
    try:
        server = app_server.start(env, log, timeout_s=start_timeout_s)
    except app_server.ServerError as e:
        pytest.fail(str(e))
    try:
        yield server.url
    finally:
        # killed, not stopped: its output is in the log already, and a graceful stop
        # takes Streamlit a second of waiting
        app_server.stop(server.proc, kill=True)


@contextlib.contextmanager
def app_environment(data_root: Path, checkpoints: Path) -> Iterator[None]:
    """What the in-process app (AppTest) reads: the data folder, the checkpoint folder,
    and CONVAE_DEBUG, so that a bug the app catches is re-raised and AppTest reports it."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVAE_DATA_DIR", str(data_root))
        mp.setenv("CONVAE_CHECKPOINT_DIR", str(checkpoints))
        mp.setenv("CONVAE_DEBUG", "1")
        yield
    torch.set_num_threads(threads)  # app.py lowers it for its own thread


def new_app(page: str | None = None, clean: bool = True):
    """The app run once in-process (on ``page`` if given), checked for exceptions and,
    when ``clean``, for error messages too."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=APP_TIMEOUT_S)
    at.run()
    if page:
        at.switch_page(page).run()
    if clean:
        assert_clean(at)
    else:
        assert not at.exception, [e.value for e in at.exception]
    return at


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def train_quickly(at):
    """On the Train page: 300 images for one epoch, Start, and wait until the job is done
    and the page has seen it (as its polling does). Returns the job."""
    at.select_slider(key="train_limit").set_value(300)
    at.slider(key="train_epochs").set_value(1)
    at.button(key="train_start").click().run()
    assert_clean(at)
    job = at.session_state["job"]
    assert job is not None and job.join(timeout=120)
    assert job.snapshot().state == "done"
    at.run()
    assert_clean(at)
    return job
