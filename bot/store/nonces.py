"""Nonces of plaintext-signed callbacks: a second use with another body is a replay.

A byte-identical retry (WeChat resends the same request) reuses the nonce with the same
body and stays welcome: the message key answers it from the recorded reply.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from bot.store.db import Store
from bot.store.models import CallbackNonce, table_of

_RECORD = insert(table_of(CallbackNonce))


def nonce_key(channel: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha256(f"{channel}\n{timestamp}\n{nonce}".encode()).hexdigest()


def claim_nonce(store: Store, key: str, body: bytes, now: datetime) -> bool:
    """Record the nonce with this body; False when it was seen with a different body."""
    body_hash = hashlib.sha256(body).hexdigest()
    try:
        with store.session() as db:
            db.execute(_RECORD, {"key": key, "body_hash": body_hash, "seen_at": now})
        return True
    except IntegrityError:
        with store.session() as db:
            seen = db.get(CallbackNonce, key)
            return seen is not None and seen.body_hash == body_hash
