"""Engine and sessions.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
BEGIN IMMEDIATE: the webhook's transactions all write (the message key at least), and
taking the write lock up front avoids the deadlock-prone read-then-upgrade pattern.
Within one process, SQLite sessions also take a lock: threads that met SQLite's own
busy handler would sleep in growing steps (up to 100 ms) and throughput would collapse
under load; queued on a lock they are served in turn. PostgreSQL needs none of this.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, make_url, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from bot.store import models  # noqa: F401  (registers the tables)

SQLITE_BUSY_TIMEOUT_MS = 10_000

try:
    import fcntl
except ImportError:  # Windows: one process at a time is served by SQLite's busy handler
    fcntl = None  # type: ignore[assignment]


def _mode_of(database: str) -> int:
    """The lock file gets the database's permissions, as SQLite gives its -wal and -shm
    files: whoever may write the database may take the lock."""
    try:
        return os.stat(database).st_mode & 0o666
    except OSError:
        return 0o644


class WriterLock:
    """One SQLite writer at a time: a re-entrant thread lock, and, for a database file,
    an exclusive ``flock`` on ``<database>-writer.lock`` held while the outermost session
    is open (nested sessions in the same thread reuse it)."""

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._path = f"{database_path}-writer.lock" if database_path and fcntl is not None else None

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._depth == 0 and self._path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, _mode_of(self._path.removesuffix("-writer.lock")))
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1

    def __exit__(self, *_: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _sqlite_path(url: str) -> str | None:
    """The database file, or None for an in-memory database."""
    path = make_url(url).database
    return None if not path or path == ":memory:" else path


_WRITER_LOCKS: dict[str, tuple[WriterLock, int]] = {}  # by real path: the lock and the stores using it
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(path: str | None) -> WriterLock:
    """One lock per database file per process, however many stores open it (two locks on
    one file in one thread would wait for each other for ever)."""
    if not path:
        return WriterLock(None)
    key = os.path.realpath(path)
    with _WRITER_LOCKS_GUARD:
        lock, users = _WRITER_LOCKS.get(key, (None, 0))
        lock = lock or WriterLock(key)
        _WRITER_LOCKS[key] = (lock, users + 1)
        return lock


def _release_writer_lock(lock: WriterLock) -> None:
    with _WRITER_LOCKS_GUARD:
        for key, (known, users) in list(_WRITER_LOCKS.items()):
            if known is lock:
                if users > 1:
                    _WRITER_LOCKS[key] = (known, users - 1)
                else:
                    del _WRITER_LOCKS[key]
                    lock.close()
                return


def _sqlite_engine(url: str, echo: bool) -> Engine:
    path = _sqlite_path(url)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Store:
    """Owns the engine; hands out sessions that commit on success and roll back on error."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url, echo)
            self._writer: WriterLock | None = _writer_lock(_sqlite_path(url))
            self._released = False
        else:
            self.engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)
            self._writer = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def create_all(self) -> None:
        SQLModel.metadata.create_all(self.engine)

    def is_initialised(self) -> bool:
        return inspect(self.engine).has_table("member")

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._writer or nullcontext(), Session(self.engine, expire_on_commit=False, autoflush=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writer is not None and not self._released:
            _release_writer_lock(self._writer)  # still usable afterwards: it reopens its file
            self._released = True


def create_store(url: str, echo: bool = False) -> Store:
    return Store(url, echo=echo)
