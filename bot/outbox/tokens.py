"""Access tokens shared by every process through the store.

A token is fetched under a lock (PostgreSQL: a transaction-level advisory lock; SQLite:
BEGIN IMMEDIATE), so two processes never fetch at once: the second waits, then finds the
first one's fresh token. When WeChat says a token is invalid or expired, ``refresh`` is
given the token that failed and fetches again only if nobody has replaced it yet.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from bot.store import Store
from bot.store.models import AccessToken

REFRESH_AHEAD = timedelta(minutes=5)

Fetch = Callable[[], tuple[str, int]]  # → (token, expires_in seconds)
Clock = Callable[[], datetime]


class TokenStore:
    """The store is the truth; each process keeps a copy in memory until it nears expiry
    or WeChat refuses it, so a send does not cost a database round trip for its token."""

    def __init__(self, store: Store, clock: Clock = lambda: datetime.now(timezone.utc)) -> None:
        self.store = store
        self.clock = clock
        self._memory: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, app: str, fetch: Fetch) -> str:
        with self._lock:
            cached = self._memory.get(app)
        if cached and cached[1] - REFRESH_AHEAD > self.clock():
            return cached[0]
        return self._locked(app, fetch, stale=None)

    def refresh(self, app: str, fetch: Fetch, stale: str) -> str:
        """Replace ``stale`` (a token WeChat refused) unless another process already has."""
        return self._locked(app, fetch, stale=stale)

    def _locked(self, app: str, fetch: Fetch, stale: str | None) -> str:
        with self.store.session() as db:
            if not self.store.is_sqlite:
                db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(app.encode())})
            row = db.get(AccessToken, app)
            now = self.clock()
            if row is None or row.token == stale or row.expires_at - REFRESH_AHEAD <= now:
                token, expires_in = fetch()
                if row is None:
                    row = AccessToken(app=app, token=token, expires_at=now, refreshed_at=now)
                row.token, row.expires_at, row.refreshed_at = token, now + timedelta(seconds=expires_in), now
                db.add(row)
            with self._lock:
                self._memory[app] = (row.token, row.expires_at)
            return row.token
