"""Engine and sessions.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
BEGIN IMMEDIATE: the webhook's transactions all write (the message key at least), and
taking the write lock up front avoids the deadlock-prone read-then-upgrade pattern.
Within one process, SQLite sessions also take a lock: threads that met SQLite's own
busy handler would sleep in growing steps (up to 100 ms) and throughput would collapse
under load; queued on a lock they are served in turn. PostgreSQL needs none of this.

Waits for the writer lock are bounded (``database.lock_timeout_seconds``): a process
stuck inside a transaction must not stall every writer for ever. A wait that runs out
raises ``WriterLockTimeout`` (the webhook answers with its short apology) and logs who
holds the lock: a thread of this process and for how long, or another process's pid.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, make_url, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from bot.store import models  # noqa: F401  (registers the tables)

DEFAULT_LOCK_TIMEOUT = 10.0  # seconds; database.lock_timeout_seconds
log = logging.getLogger("branchbot.store")

if sys.platform == "win32":  # no fcntl: one process at a time is served by SQLite's busy handler
    fcntl = None
else:
    import fcntl


def _mode_of(database: str) -> int:
    """The lock file gets the database's permissions, as SQLite gives its -wal and -shm
    files: whoever may write the database may take the lock."""
    try:
        return os.stat(database).st_mode & 0o666
    except OSError:
        return 0o644


class WriterLockTimeout(Exception):
    """The writer lock stayed taken for the whole bounded wait."""


class WriterLock:
    """One SQLite writer at a time: a re-entrant thread lock, and, for a database file,
    an exclusive ``flock`` on ``<database>-writer.lock`` held while the outermost session
    is open (nested sessions in the same thread reuse it). Waiting for either gives up
    after ``timeout`` seconds with ``WriterLockTimeout``."""

    def __init__(self, database_path: str | None, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._path = f"{database_path}-writer.lock" if database_path and fcntl is not None else None
        self.timeout = timeout
        self._holder: tuple[str, float] | None = None  # (thread name, monotonic time taken) of the outermost session

    def __enter__(self) -> None:
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            self._gave_up(self._in_process_holder())
        if self._depth == 0 and self._path is not None:
            try:
                if self._fd is None:
                    self._fd = os.open(
                        self._path, os.O_RDWR | os.O_CREAT, _mode_of(self._path.removesuffix("-writer.lock"))
                    )
                self._flock(deadline)
            except BaseException:
                self._threads.release()
                raise
        if self._depth == 0:
            self._holder = (threading.current_thread().name, time.monotonic())
        self._depth += 1

    def _flock(self, deadline: float) -> None:
        """flock has no timeout: try without blocking, then poll in short, growing sleeps."""
        fd = self._fd
        assert fd is not None
        delay = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                self._gave_up(self._other_process_holder(fd))
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.01)

    def _in_process_holder(self) -> str:
        holder = self._holder
        if holder is None:
            return "another thread of this process"
        name, since = holder
        return f"thread {name!r} of this process (pid {os.getpid()}), for {time.monotonic() - since:.1f} s"

    def _other_process_holder(self, fd: int) -> str:
        """The pid holding our lock file, from /proc/locks (Linux), if it can be told."""
        try:
            inode = os.fstat(fd).st_ino
            with open("/proc/locks", encoding="ascii", errors="replace") as locks:
                for line in locks:
                    fields = line.split()
                    # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (a "->" marks a waiter)
                    if (
                        len(fields) >= 6
                        and fields[1] == "FLOCK"
                        and fields[5].rsplit(":", 1)[-1] == str(inode)
                        and fields[4].isdigit()
                    ):
                        return f"process pid {fields[4]}"
        except OSError:
            pass
        return "another process"

    def _gave_up(self, holder: str) -> None:
        log.warning(
            "database writer lock not free after %.1f s (database.lock_timeout_seconds); held by %s",
            self.timeout,
            holder,
        )
        raise WriterLockTimeout(holder)

    def __exit__(self, *_: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                self._holder = None
                if self._fd is not None:
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


def _writer_lock(path: str | None, timeout: float) -> WriterLock:
    """One lock per database file per process, however many stores open it (two locks on
    one file in one thread would wait for each other for ever). The latest store's
    timeout applies."""
    if not path:
        return WriterLock(None, timeout)
    key = os.path.realpath(path)
    with _WRITER_LOCKS_GUARD:
        lock, users = _WRITER_LOCKS.get(key, (None, 0))
        lock = lock or WriterLock(key, timeout)
        lock.timeout = timeout
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


def _sqlite_engine(url: str, echo: bool, lock_timeout: float) -> Engine:
    path = _sqlite_path(url)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": lock_timeout},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Store:
    """Owns the engine; hands out sessions that commit on success and roll back on error."""

    def __init__(self, url: str, echo: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.url = url
        if url.startswith("sqlite"):
            self.engine = _sqlite_engine(url, echo, lock_timeout)
            self._writer: WriterLock | None = _writer_lock(_sqlite_path(url), lock_timeout)
            self._released = False
        else:
            self.engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)
            self._writer = None

    def set_lock_timeout(self, seconds: float) -> None:
        """Bound the wait for the writer lock (SQLite; PostgreSQL has no such lock)."""
        if self._writer is not None:
            self._writer.timeout = seconds

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


def create_store(url: str, echo: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Store:
    return Store(url, echo=echo, lock_timeout=lock_timeout)
