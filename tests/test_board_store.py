"""The board's database, once on SQLite and once on a real PostgreSQL server.

Every test here runs against both: ``backend`` gives a fresh, empty database of each
kind (a new SQLite file; a new database on the PostgreSQL server that the
``postgres_url`` fixture starts in a temporary folder). Without PostgreSQL the second
run is skipped, except with ``$CI`` set, where it fails.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import REPO

from convae.classroom.board_store import BoardStore
from convae.classroom.challenge import SHIPPED, ChallengeError, Result, make_challenge

_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path) -> tuple[str, Path]:
    """(database URL, weights folder) of a fresh database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'board.sqlite'}", tmp_path / "weights"
    server = request.getfixturevalue("postgres_url")
    name = f"board_{os.getpid()}_{next(_numbers)}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}", tmp_path / "weights"


@pytest.fixture
def store(backend):
    board = BoardStore(*backend)
    yield board
    board.close()


def result(psnr=20.0, code=196, ssim=0.9, arch="conv-upsample") -> Result:
    return Result(arch, code, 1477, 1000, 10 ** (-psnr / 10), psnr, ssim, 0.1, b"\x89PNG")


def test_the_schema_and_the_shipped_challenges_are_created_on_first_start(backend):
    first = BoardStore(*backend)
    second = BoardStore(*backend)  # another process starting on the same database
    slugs = [c.challenge.slug for c in second.challenges()]
    assert slugs == [c.slug for c in SHIPPED]  # once each, not twice
    assert all(c.is_open for c in second.challenges())
    assert first.challenge("mnist-196").challenge == SHIPPED[0]
    with pytest.raises(ChallengeError, match="no such challenge"):
        first.challenge("nope")
    first.close()
    second.close()


def test_the_best_entry_of_each_nickname_counts_and_resubmitting_can_only_help(store):
    store.add_entry("mnist-196", "Ada", result(22.0), b"a1")
    store.add_entry("mnist-196", "Grace", result(23.0), b"g1")
    store.add_entry("mnist-196", "ada ", result(25.0), b"a2")  # the same student, better
    store.add_entry("mnist-196", "Ada", result(18.0), b"a3")  # worse: her best stays
    store.add_entry("mnist-196", "Alan", result(30.0, code=392), b"big")  # over the limit
    _, board = store.board("mnist-196")
    assert [(r.place, r.entry.nickname, r.entry.psnr) for r in board] == [
        (1, "ada", 25.0),
        (2, "Grace", 23.0),
        (None, "Alan", 30.0),
    ]
    assert board[0].submissions == 3
    assert len(store.entries("mnist-196")) == 5


def test_weights_are_stored_once_by_their_content_hash(store):
    import hashlib

    first = store.add_entry("mnist-196", "Ada", result(), b"same weights")
    second = store.add_entry("mnist-smallest-20db", "Ada", result(), b"same weights")
    path = store.weights_path(first)
    assert path == store.weights_path(second)
    assert path.name == hashlib.sha256(b"same weights").hexdigest() + ".pt"
    assert path.read_bytes() == b"same weights"
    assert [p.name for p in store.weights_dir.iterdir()] == [path.name]
    assert store.reconstructions(first) == b"\x89PNG"


def test_the_teachers_controls_close_hide_remove_reset_and_open(store):
    ada = store.add_entry("mnist-196", "Ada", result(25.0), b"a")
    store.add_entry("mnist-196", "Grace", result(23.0), b"g")
    store.set_hidden(ada, True)
    assert [r.entry.nickname for r in store.board("mnist-196")[1]] == ["Grace"]
    assert len(store.entries("mnist-196", include_hidden=True)) == 2
    store.set_hidden(ada, False)
    assert store.board("mnist-196")[1][0].entry.nickname == "Ada"
    store.remove(ada)
    assert [e.nickname for e in store.entries("mnist-196", include_hidden=True)] == ["Grace"]

    store.set_open("mnist-196", False)
    assert not store.challenge("mnist-196").is_open
    with pytest.raises(ChallengeError, match="closed"):
        store.add_entry("mnist-196", "Late", result(), b"l")
    store.set_open("mnist-196", True)
    assert store.reset("mnist-196") == 1
    assert store.entries("mnist-196") == []
    assert store.entries("mnist-smallest-20db") == []

    new = make_challenge("Fashion: best SSIM", "fashion-mnist", "mask:0.3", "ssim", None)
    store.add_challenge(new)
    assert store.challenge(new.slug).challenge == new
    with pytest.raises(ChallengeError, match="exists already"):
        store.add_challenge(new)


def test_the_csv_export_is_the_board_and_never_a_spreadsheet_formula(store):
    store.add_entry("mnist-196", "=HYPERLINK(1)", result(25.0), b"x")
    store.add_entry("mnist-196", "Grace", result(23.0), b"g")
    lines = store.csv("mnist-196").splitlines()
    assert lines[0].startswith("place,nickname,score,arch,code_size,params,psnr,ssim")
    assert lines[1].startswith("1,'=HYPERLINK(1),25.00 dB,conv-upsample,196,1477,25.0,")
    assert lines[2].startswith("2,Grace,")
    assert len(lines) == 3


def test_wrong_passphrases_are_counted_per_session_and_in_all(store):
    for _ in range(3):
        store.record_attempt("session-a", False)
    store.record_attempt("session-b", False)
    store.record_attempt("session-b", True)
    assert store.failed_attempts(60, session="session-a") == 3
    assert store.failed_attempts(60, session="session-b") == 1
    assert store.failed_attempts(60) == 4
    assert store.failed_attempts(0.0) == 0  # older than the window: not counted


# ------------------------------------------------------------ processes and crashes
WRITER = textwrap.dedent(
    """
    import os, sys, time
    import sqlalchemy as sa
    from convae.classroom.board_store import BoardStore
    from convae.classroom.challenge import Result

    url, weights, stage, nickname, count = sys.argv[1:6]
    store = BoardStore(url, weights)
    if stage == "weights":  # stall once the weights file is written, before it is renamed
        def stall(fd):
            print("ready", flush=True)
            time.sleep(600)
        os.fsync = stall
    elif stage == "transaction":  # stall after the INSERT, before the commit
        @sa.event.listens_for(store._engine, "after_cursor_execute")
        def stall(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("INSERT INTO ENTRIES"):
                print("ready", flush=True)
                time.sleep(600)
    for i in range(int(count)):
        data = f"{nickname}-{i}".encode() * 1000
        store.add_entry("mnist-196", nickname, Result("linear", 32, 9, 10, 0.01, 20.0 + i,
                        0.5, 0.1, b"png"), data)
    print("done", flush=True)
    """
)


def writer(backend, stage: str, nickname: str, count: int = 1) -> subprocess.Popen:
    url, weights = backend
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(weights), stage, nickname, str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["weights", "transaction"])
def test_a_submission_killed_half_way_leaves_no_entry_and_the_board_intact(backend, store, stage):
    kept = store.add_entry("mnist-196", "Ada", result(25.0), b"already on the board")
    proc = writer(backend, stage, "Killed")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    entries = store.entries("mnist-196", include_hidden=True)
    assert [(e.id, e.nickname) for e in entries] == [(kept, "Ada")]
    for path in store.weights_dir.iterdir():  # every finished weights file is whole
        assert not path.name.endswith(".pt") or path.stat().st_size > 0
    if stage == "weights":
        assert [p for p in store.weights_dir.iterdir() if p.suffix == ".pt"] == [
            store.weights_path(kept)
        ]
    # the database is not left locked: the next submission goes through
    store.add_entry("mnist-196", "Grace", result(23.0), b"after the crash")
    assert [r.entry.nickname for r in store.board("mnist-196")[1]] == ["Ada", "Grace"]


@pytest.mark.slow
def test_two_processes_submitting_at_once_both_land_on_one_board(backend, store):
    procs = [writer(backend, "plain", name, count=8) for name in ("Left", "Right")]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip() == "done", err
    board = store.board("mnist-196")[1]
    assert sorted((r.entry.nickname, r.submissions) for r in board) == [("Left", 8), ("Right", 8)]
    assert all(r.entry.psnr == 27.0 for r in board)  # each one's best of 8
