"""One inbound message in, one reply out, exactly once per message key.

The message key, the handler's writes and the recorded reply commit in one
transaction: a retry finds the recorded reply and changes nothing, and a handler that
fails leaves nothing behind (the retry may then succeed). On PostgreSQL a retry handled
by another instance at the same moment inserts the same key, waits on the primary key
until the first commits, fails, and rolls back everything its handler did; it answers
with the recorded reply. On SQLite, BEGIN IMMEDIATE serialises writers. Within one
process, duplicates that arrive while the original is in progress are coalesced in
``bot.app``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from bot.config import Config
from bot.messages import Inbound, conceal, log_safe, reveal
from bot.router import Context, Registry, find_member, route
from bot.store import ProcessedMessage, Store
from bot.store.models import table_of

log = logging.getLogger("branchbot.engine")

Clock = Callable[[], datetime]
RECORD_KEY = insert(table_of(ProcessedMessage))  # built once (see bot.store.lookups); Core, not the ORM bulk path


def system_clock() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        store: Store,
        config: Config,
        registry: Registry,
        clock: Clock = system_clock,
        on_push: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.registry = registry
        self.clock = clock
        self.on_push = on_push or (lambda: None)

    def now(self) -> datetime:
        return self.clock().astimezone(self.config.tz)

    def recorded_reply(self, key: str) -> str | None:
        with self.store.session() as db:
            seen = db.get(ProcessedMessage, key)
            return None if seen is None else seen.reply

    def handle(self, inbound: Inbound) -> str:
        """Process one message (or return the reply recorded for its key)."""
        try:
            return self._handle_once(inbound)
        except IntegrityError:
            # A retry of a message already answered (here or by another instance).
            recorded = self.recorded_reply(inbound.key)
            if recorded is None:
                raise
            return recorded

    def _handle_once(self, inbound: Inbound) -> str:
        # No look-up first: the key's primary key catches a retry at insert time (and the
        # retry's writes roll back), which keeps the common path one statement shorter.
        now = self.now()
        with self.store.session() as db:
            ctx = Context(
                db=db,
                config=self.config,
                now=now,
                inbound=inbound,
                member=find_member(db, inbound),
                registry=self.registry,
            )
            reply = route(ctx)
            db.flush()
            # A one-time secret in the reply (a console link) is shown now and never stored.
            db.execute(
                RECORD_KEY, {"key": inbound.key, "channel": inbound.channel, "reply": conceal(reply), "created_at": now}
            )
            return reveal(reply)

    def push_reply(self, inbound: Inbound, reply: str) -> None:
        """Send a reply that missed WeChat's deadline as a one-member campaign.

        What is pushed is the recorded reply, so a one-time secret in it (a console link)
        never reaches the outbox's tables; the member is told to ask again instead."""
        recorded = self.recorded_reply(inbound.key)
        if recorded is not None:
            reply = recorded
        from bot.outbox.campaigns import create_campaign
        from bot.store.db import WriterLockTimeout

        try:
            with self.store.session() as db:
                member = find_member(db, inbound)
                if member is None or member.id is None:
                    log.warning("late reply to %s dropped: sender is not on the roster", log_safe(inbound.key, 120))
                    return
                create_campaign(
                    db, kind="reply", text=reply, member_ids=[member.id], now=self.now(), branch_id=member.branch_id
                )
        except WriterLockTimeout:
            log.warning("late reply to %s dropped: the database stayed busy", log_safe(inbound.key, 120))
            return
        self.on_push()
