"""The challenges' board in a real database, shared by every app process.

Through SQLAlchemy, so that one code serves a SQLite file (the default: one machine,
several app processes) and PostgreSQL (replicas on several machines):

- ``$CONVAE_DATABASE_URL``: any SQLAlchemy URL; ``postgresql://...`` uses the pure-Python
  pg8000 driver unless the URL names another;
- else ``board.sqlite`` in ``$CONVAE_BOARD_DIR`` (default ``./board``), in WAL mode so that
  readers never wait for a writer, with a busy timeout so that writers queue.

Submitted weights are files beside it, ``weights/<sha256>.pt`` (``$CONVAE_BOARD_DIR``),
named by their content hash, which the entry records. A submission writes its weights
file atomically first, then its entry in one transaction: a process killed at any point
leaves either the whole entry or none (at worst an unreferenced weights file), and never
touches what the board held already. The schema and the shipped challenges are created
on first use; there is no manual step.

No UI code lives here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from convae.base.errors import ConvaeError
from convae.base.files import write_atomically
from convae.classroom.challenge import (
    SHIPPED,
    Challenge,
    ChallengeError,
    Entry,
    Result,
    clean_nickname,
    columns,
    rank,
)
from convae.data.noise import Noise

DATABASE_URL_ENV = "CONVAE_DATABASE_URL"
BOARD_DIR_ENV = "CONVAE_BOARD_DIR"
DEFAULT_BOARD_DIR = "board"
BUSY_TIMEOUT_S = 30  # SQLite: a writer waits this long for another process's write

log = logging.getLogger("convae.board")

metadata = sa.MetaData()
challenges_table = sa.Table(
    "challenges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(40), nullable=False, unique=True),
    sa.Column("title", sa.String(80), nullable=False),
    sa.Column("dataset", sa.String(40), nullable=False),
    sa.Column("noise", sa.String(40), nullable=False),
    sa.Column("rule", sa.String(40), nullable=False),
    sa.Column("limit_value", sa.Float, nullable=True),
    sa.Column("is_open", sa.Boolean, nullable=False, default=True),
    sa.Column("created", sa.Float, nullable=False),
)
entries_table = sa.Table(
    "entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "challenge_id",
        sa.Integer,
        sa.ForeignKey("challenges.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("nickname", sa.String(24), nullable=False),
    sa.Column("arch", sa.String(40), nullable=False),
    sa.Column("code_size", sa.Integer, nullable=False),
    sa.Column("params", sa.Integer, nullable=False),
    sa.Column("n_images", sa.Integer, nullable=False),
    sa.Column("mse", sa.Float, nullable=False),
    sa.Column("psnr", sa.Float, nullable=False),
    sa.Column("ssim", sa.Float, nullable=False),
    sa.Column("weights_sha256", sa.String(64), nullable=False),
    sa.Column("reconstructions", sa.LargeBinary, nullable=False),
    sa.Column("hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("created", sa.Float, nullable=False),
)
attempts_table = sa.Table(  # the teacher's passphrase: every try, for rate limits and the log
    "teacher_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("session", sa.String(64), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("at", sa.Float, nullable=False, index=True),
)


class BoardError(ConvaeError):
    """The board's database cannot be reached or used (the message says which)."""


@dataclass(frozen=True)
class Listed:
    """A challenge as stored: what it asks and whether it takes submissions."""

    challenge: Challenge
    is_open: bool


def database_url() -> str:
    """``$CONVAE_DATABASE_URL``, else the SQLite file in :func:`board_dir`."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+pg8000://" + url.split("://", 1)[1]
        return url
    return f"sqlite:///{board_dir() / 'board.sqlite'}"


def board_dir() -> Path:
    return Path(os.environ.get(BOARD_DIR_ENV) or DEFAULT_BOARD_DIR)


def _sqlite_setup(engine: Engine) -> None:
    """WAL (readers and one writer at once, across processes), foreign keys, and
    transactions begun by us: a write transaction takes the write lock at its start
    (BEGIN IMMEDIATE), where a busy timeout applies; upgrading a read transaction later
    fails at once when another process wrote meanwhile."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not BEGIN on its own
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("convae_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class BoardStore:
    """The challenges, their entries and the teacher's passphrase attempts.

    Args:
        url: a SQLAlchemy database URL (default :func:`database_url`).
        weights_dir: where submitted weights go (default ``<board dir>/weights``).
    """

    def __init__(self, url: str | None = None, weights_dir: str | Path | None = None):
        self.url = url or database_url()
        self.weights_dir = Path(weights_dir) if weights_dir else board_dir() / "weights"
        try:
            if self.url.startswith("sqlite:///"):
                Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            options: dict[str, Any] = {"pool_pre_ping": True}
            if self.url.startswith("sqlite"):
                options["connect_args"] = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
            self._engine = sa.create_engine(self.url, **options)
            if self._engine.dialect.name == "sqlite":
                _sqlite_setup(self._engine)
            self._create_schema()
        except (sa.exc.SQLAlchemyError, OSError, ImportError) as e:
            raise BoardError(f"the challenge board's database is unavailable: {_short(e)}") from e

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(convae_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            with conn.begin():
                yield conn

    def _create_schema(self) -> None:
        """Tables and shipped challenges, if missing. Several processes may start at
        once: whoever loses a race finds the other's tables and rows."""
        for attempt in range(3):
            try:
                metadata.create_all(self._engine, checkfirst=True)
                break
            except sa.exc.SQLAlchemyError:
                if attempt == 2:
                    raise
                time.sleep(0.2)
        for challenge in SHIPPED:
            try:
                self.add_challenge(challenge)
            except (ChallengeError, sa.exc.IntegrityError):
                pass  # there already (another process added it first)

    # ------------------------------------------------------------------ challenges
    def challenges(self) -> list[Listed]:
        """Every challenge, oldest first."""
        with self._read() as conn:
            rows = conn.execute(sa.select(challenges_table).order_by(challenges_table.c.id))
            return [_listed(row) for row in rows]

    def challenge(self, slug: str) -> Listed:
        """One challenge by its slug.

        Raises:
            ChallengeError: there is none of that name.
        """
        with self._read() as conn:
            row = conn.execute(
                sa.select(challenges_table).where(challenges_table.c.slug == slug)
            ).first()
        if row is None:
            raise ChallengeError("there is no such challenge (it may have been removed)")
        return _listed(row)

    def add_challenge(self, challenge: Challenge, is_open: bool = True) -> None:
        """Open a new challenge.

        Raises:
            ChallengeError: a challenge of the same slug exists.
        """
        with self._write() as conn:
            taken = conn.execute(
                sa.select(challenges_table.c.id).where(challenges_table.c.slug == challenge.slug)
            ).first()
            if taken is not None:
                raise ChallengeError(
                    f"a challenge named {challenge.slug!r} exists already; choose another title"
                )
            conn.execute(
                challenges_table.insert().values(
                    slug=challenge.slug,
                    title=challenge.title,
                    dataset=challenge.dataset,
                    noise=str(challenge.noise),
                    rule=challenge.rule,
                    limit_value=challenge.limit,
                    is_open=is_open,
                    created=time.time(),
                )
            )

    def set_open(self, slug: str, is_open: bool) -> None:
        """Open or close a challenge's submissions (the board stays)."""
        with self._write() as conn:
            conn.execute(
                challenges_table.update()
                .where(challenges_table.c.slug == slug)
                .values(is_open=is_open)
            )

    def reset(self, slug: str) -> int:
        """Remove every entry of a challenge; returns how many there were."""
        with self._write() as conn:
            cid = self._id(conn, slug)
            result = conn.execute(entries_table.delete().where(entries_table.c.challenge_id == cid))
            return int(result.rowcount or 0)

    # ------------------------------------------------------------------ entries
    def add_entry(self, slug: str, nickname: str, result: Result, weights: bytes) -> int:
        """Put a measured submission on the board; returns its entry id.

        The weights file is written (atomically) before the entry's one transaction, so
        an entry never names weights that are not on disk.

        Raises:
            ChallengeError: the nickname is not acceptable, the challenge does not exist
                or is closed.
        """
        nickname = clean_nickname(nickname)
        digest = hashlib.sha256(weights).hexdigest()
        path = self.weights_dir / f"{digest}.pt"
        if not path.is_file():  # the same bytes submitted twice are stored once
            write_atomically(path, weights)
        with self._write() as conn:
            row = conn.execute(
                sa.select(challenges_table.c.id, challenges_table.c.is_open).where(
                    challenges_table.c.slug == slug
                )
            ).first()
            if row is None:
                raise ChallengeError("there is no such challenge (it may have been removed)")
            if not row.is_open:
                raise ChallengeError("this challenge is closed: the teacher stopped submissions")
            inserted = conn.execute(
                entries_table.insert()
                .values(
                    challenge_id=row.id,
                    nickname=nickname,
                    arch=result.arch,
                    code_size=result.code_size,
                    params=result.params,
                    n_images=result.n,
                    mse=result.mse,
                    psnr=result.psnr,
                    ssim=result.ssim,
                    weights_sha256=digest,
                    reconstructions=result.reconstructions,
                    hidden=False,
                    created=time.time(),
                )
                .returning(entries_table.c.id)
            )
            return int(inserted.scalar_one())

    def entries(self, slug: str, include_hidden: bool = False) -> list[Entry]:
        """A challenge's entries (every submission), oldest first; no pictures."""
        t = entries_table
        query = (
            sa.select(
                t.c.id,
                t.c.nickname,
                t.c.arch,
                t.c.code_size,
                t.c.params,
                t.c.mse,
                t.c.psnr,
                t.c.ssim,
                t.c.created,
                t.c.hidden,
            )
            .join(challenges_table)
            .where(challenges_table.c.slug == slug)
            .order_by(t.c.id)
        )
        if not include_hidden:
            query = query.where(t.c.hidden.is_(False))
        with self._read() as conn:
            return [Entry(**row._mapping) for row in conn.execute(query)]

    def board(self, slug: str) -> tuple[Challenge, list]:
        """The challenge and its ranking (:func:`convae.classroom.challenge.rank`)."""
        challenge = self.challenge(slug).challenge
        return challenge, rank(challenge, self.entries(slug))

    def reconstructions(self, entry_id: int) -> bytes | None:
        """The PNG of an entry's reconstructions (None: it was removed)."""
        with self._read() as conn:
            return conn.execute(
                sa.select(entries_table.c.reconstructions).where(entries_table.c.id == entry_id)
            ).scalar_one_or_none()

    def weights_path(self, entry_id: int) -> Path | None:
        with self._read() as conn:
            digest = conn.execute(
                sa.select(entries_table.c.weights_sha256).where(entries_table.c.id == entry_id)
            ).scalar_one_or_none()
        return None if digest is None else self.weights_dir / f"{digest}.pt"

    def set_hidden(self, entry_id: int, hidden: bool) -> None:
        with self._write() as conn:
            conn.execute(
                entries_table.update().where(entries_table.c.id == entry_id).values(hidden=hidden)
            )

    def remove(self, entry_id: int) -> None:
        with self._write() as conn:
            conn.execute(entries_table.delete().where(entries_table.c.id == entry_id))

    def csv(self, slug: str) -> str:
        """The board (visible entries, ranked) as CSV. A cell that a spreadsheet would
        take for a formula (``=``, ``+``, ``-``, ``@``) is quoted with a leading ``'``."""
        challenge, board = self.board(slug)
        rows = columns(challenge, board)
        out = io.StringIO()
        fields = ["place", "nickname", "score", "arch", "code_size", "params", "psnr", "ssim"]
        fields += ["mse", "submissions", "meets_rule"]
        writer = csv.DictWriter(out, fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _no_formula(v) for k, v in row.items()})
        return out.getvalue()

    # ------------------------------------------------------------------ the teacher
    def record_attempt(self, session: str, ok: bool) -> None:
        with self._write() as conn:
            conn.execute(
                attempts_table.insert().values(session=session[:64], ok=ok, at=time.time())
            )

    def failed_attempts(self, within_s: float, session: str | None = None) -> int:
        """Wrong passphrases in the last ``within_s`` seconds (of one session, or all)."""
        t = attempts_table
        query = sa.select(sa.func.count()).where(
            t.c.ok.is_(False), t.c.at >= time.time() - within_s
        )
        if session is not None:
            query = query.where(t.c.session == session[:64])
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    # ------------------------------------------------------------------ inside
    def _id(self, conn: Connection, slug: str) -> int:
        cid = conn.execute(
            sa.select(challenges_table.c.id).where(challenges_table.c.slug == slug)
        ).scalar_one_or_none()
        if cid is None:
            raise ChallengeError("there is no such challenge (it may have been removed)")
        return int(cid)


def _listed(row: Any) -> Listed:
    challenge = Challenge(
        row.slug, row.title, row.dataset, Noise.parse(row.noise), row.rule, row.limit_value
    )
    return Listed(challenge, bool(row.is_open))


def _no_formula(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _short(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


_stores: dict[tuple[str, str], BoardStore] = {}
_stores_lock = threading.Lock()


def shared_store() -> BoardStore:
    """The process's one store for the configured database (engines pool connections:
    one per process is enough)."""
    key = (database_url(), str(board_dir()))
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = BoardStore()
        return store
