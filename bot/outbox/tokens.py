"""Access tokens shared by every process through the store.

Only one process fetches a token at a time, and within a process only one thread: the
others wait and then use what it got. Across processes the lock is, on PostgreSQL, a
transaction-level advisory lock; on SQLite, an exclusive ``flock`` on
``<database>-tokens.lock``, so that the database itself is never locked while WeChat is
asked (with the API slow or down, a fetch can take the whole HTTP timeout, and every
webhook reply would wait for it). Where no file lock is available (no ``fcntl``, or an
in-memory database), SQLite falls back to its write lock.

When WeChat says a token is invalid or expired, ``refresh`` is given the token that
failed and fetches again only if nobody has replaced it yet. Threads that waited for a
fetch that failed get its error at once instead of each asking again in turn.
"""

from __future__ import annotations

import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from bot.store import Store
from bot.store.db import _sqlite_path
from bot.store.models import AccessToken

if sys.platform == "win32":  # pragma: no cover - no fcntl
    fcntl = None
else:
    import fcntl

REFRESH_AHEAD = timedelta(minutes=5)
# A failed fetch answers every call for this long (seconds): while the API is down, the
# sending threads and their quick retries do not each ask for a token in turn.
FAILED_FETCH_HOLD = 1.0

Fetch = Callable[[], tuple[str, int]]  # → (token, expires_in seconds)
Clock = Callable[[], datetime]


class TokenStore:
    """The store is the truth; each process keeps a copy in memory until it nears expiry
    or WeChat refuses it, so a send does not cost a database round trip for its token."""

    def __init__(self, store: Store, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock
        self._memory: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}  # app → held by the thread fetching
        self._failed: dict[str, tuple[BaseException, float]] = {}  # app → (last fetch error, when)
        path = _sqlite_path(store.url) if store.is_sqlite else None
        self._lock_file = Path(f"{path}-tokens.lock") if path and fcntl is not None else None

    def get(self, app: str, fetch: Fetch) -> str:
        cached = self._fresh(app, stale=None)
        return cached if cached is not None else self._locked(app, fetch, stale=None)

    def refresh(self, app: str, fetch: Fetch, stale: str) -> str:
        """Replace ``stale`` (a token WeChat refused) unless another process already has."""
        return self._locked(app, fetch, stale=stale)

    def _fresh(self, app: str, stale: str | None) -> str | None:
        with self._lock:
            cached = self._memory.get(app)
        if cached and cached[0] != stale and cached[1] - REFRESH_AHEAD > self.clock():
            return cached[0]
        return None

    def _locked(self, app: str, fetch: Fetch, stale: str | None) -> str:
        asked = time.monotonic()
        with self._lock:
            mine = self._fetching.setdefault(app, threading.Lock())
        with mine:
            with self._lock:
                failed = self._failed.get(app)
            if failed is not None and (failed[1] >= asked or time.monotonic() - failed[1] < FAILED_FETCH_HOLD):
                raise failed[0]  # the fetch this call waited for, or one a moment ago, has failed
            cached = self._fresh(app, stale)
            if cached is not None:
                return cached  # another thread has just fetched it
            try:
                token, expires_at = self._shared(app, fetch, stale)
            except Exception as exc:
                with self._lock:
                    self._failed[app] = (exc, time.monotonic())
                raise
            with self._lock:
                self._memory[app] = (token, expires_at)
            return token

    def _shared(self, app: str, fetch: Fetch, stale: str | None) -> tuple[str, datetime]:
        """The store's token, fetched first if it is missing, near expiry or ``stale``."""
        if self._lock_file is None:
            with self.store.session() as db:
                if not self.store.is_sqlite:
                    db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(app.encode())})
                return self._read_or_fetch(db, app, fetch, stale)
        with self._file_lock():
            with self.store.session() as db:
                row = db.get(AccessToken, app)
            if row is not None and self._usable(row, stale):
                return row.token, row.expires_at
            token, expires_in = fetch()  # no database lock held while WeChat is asked
            with self.store.session() as db:
                return self._save(db, app, token, expires_in)

    def _read_or_fetch(self, db: Session, app: str, fetch: Fetch, stale: str | None) -> tuple[str, datetime]:
        row = db.get(AccessToken, app)
        if row is not None and self._usable(row, stale):
            return row.token, row.expires_at
        token, expires_in = fetch()
        return self._save(db, app, token, expires_in)

    def _usable(self, row: AccessToken, stale: str | None) -> bool:
        return row.token != stale and row.expires_at - REFRESH_AHEAD > self.clock()

    def _save(self, db: Session, app: str, token: str, expires_in: int) -> tuple[str, datetime]:
        now = self.clock()
        row = db.get(AccessToken, app) or AccessToken(app=app, token=token, expires_at=now, refreshed_at=now)
        row.token, row.expires_at, row.refreshed_at = token, now + timedelta(seconds=expires_in), now
        db.add(row)
        return row.token, row.expires_at

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        assert self._lock_file is not None and fcntl is not None
        with self._lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
