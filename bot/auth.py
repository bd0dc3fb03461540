"""Console logins and sessions, kept in the store (any process can check any session).

A 后台 link carries a random token (256 bits) of which only the SHA-256 is stored; it is
valid 10 minutes, once, for the member it was issued to. A session's cookie carries
another random id, also stored only as a hash. Who may use the console is decided from
the Member row on every request (``may_use``), never from what the session remembers.

Store functions, below the web console: the 后台 chat command issues links with them
without importing the console's pages.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from bot.store import Member, Role
from bot.store.members import is_active
from bot.store.models import ConsoleLoginFailure, ConsoleLoginToken, ConsoleSession

LINK_VALID = timedelta(minutes=10)
ABSOLUTE = timedelta(hours=8)  # a session ends 8 hours after login, however busy
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 10  # unknown, used or expired tokens per client per window
CONSOLE_ROLES = (Role.SECRETARY.value, Role.ADMIN.value)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def may_use(member: Member | None) -> bool:
    """Secretaries and admins who are still on the roster (在册)."""
    return is_active(member) and member.role in CONSOLE_ROLES


def issue_link_token(db: Session, member: Member, now: datetime) -> str:
    """A one-time login token for ``member``; the caller builds the link. Older unused
    tokens of the same member stay valid until they expire (each link is its own)."""
    assert member.id is not None
    raw = secrets.token_urlsafe(32)
    db.add(ConsoleLoginToken(token_hash=digest(raw), member_id=member.id, created_at=now, expires_at=now + LINK_VALID))
    db.execute(delete(ConsoleLoginToken).where(col(ConsoleLoginToken.expires_at) < now - timedelta(days=1)))
    return raw


class LoginRefused(Exception):
    """Why a login did not open a session, in words for the page."""

    def __init__(self, title: str, detail: str, status: int = 400) -> None:
        super().__init__(title)
        self.title, self.detail, self.status = title, detail, status


AGAIN = "请在机器人中重新发送「后台」获取新的登录链接。"


def client_key(address: str) -> str:
    """What the attempt limit counts by: a hash, so no raw address is stored."""
    return digest(f"console-client:{address}")[:32]


def _failures(db: Session, client: str, now: datetime) -> int:
    return db.exec(
        select(func.count(col(ConsoleLoginFailure.id))).where(
            col(ConsoleLoginFailure.client) == client, col(ConsoleLoginFailure.at) > now - FAILURE_WINDOW
        )
    ).one()


def record_failure(db: Session, client: str, now: datetime) -> None:
    """Count a failed login (a bad token, or a WeCom code WeChat did not accept)."""
    db.add(ConsoleLoginFailure(client=client, at=now))
    db.execute(delete(ConsoleLoginFailure).where(col(ConsoleLoginFailure.at) < now - timedelta(days=1)))


def check_attempts(db: Session, client: str, now: datetime) -> None:
    if _failures(db, client, now) >= MAX_FAILURES:
        raise LoginRefused("尝试次数过多", "无效的登录链接已尝试多次，请 15 分钟后再试。" + AGAIN, 429)


def redeem_link(db: Session, raw: str, client: str, now: datetime) -> Member:
    """The member a valid, unused, unexpired token was issued to; the token is used up.

    Every refusal except a lock-out is counted against the client, so guessing is capped
    (10 tries per 15 minutes, against 2^256 tokens). The caller commits the failure even
    though it raises: catch the refusal inside the session."""
    check_attempts(db, client, now)
    token = db.get(ConsoleLoginToken, digest(raw)) if 20 <= len(raw) <= 100 else None
    if token is None:
        record_failure(db, client, now)
        raise LoginRefused("登录链接无效", "这个链接不存在或不完整。" + AGAIN)
    if token.used_at is not None:
        record_failure(db, client, now)
        raise LoginRefused("登录链接已使用", "每个登录链接只能使用一次。" + AGAIN)
    if token.expires_at <= now:
        record_failure(db, client, now)
        raise LoginRefused("登录链接已过期", "登录链接的有效期为 10 分钟。" + AGAIN)
    token.used_at = now
    db.add(token)
    member = db.get(Member, token.member_id)
    if not may_use(member):
        raise LoginRefused("没有权限", "管理后台仅限在册的支部书记和管理员使用。", 403)
    assert member is not None
    return member


@dataclass(frozen=True)
class Opened:
    raw_id: str  # for the cookie only
    csrf: str


def open_session(db: Session, member: Member, now: datetime, via: str = "link") -> Opened:
    assert member.id is not None
    raw, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    db.add(
        ConsoleSession(id_hash=digest(raw), member_id=member.id, csrf=csrf, via=via, created_at=now, last_seen_at=now)
    )
    db.execute(delete(ConsoleSession).where(col(ConsoleSession.created_at) < now - ABSOLUTE - timedelta(days=1)))
    return Opened(raw, csrf)


def live_session(db: Session, raw: str, now: datetime, idle: timedelta) -> ConsoleSession | None:
    """The session behind a cookie if it is neither ended nor idle nor too old; touching it."""
    if not raw or len(raw) > 100:
        return None
    row = db.get(ConsoleSession, digest(raw))
    if row is None or row.ended_at is not None:
        return None
    if now - row.last_seen_at > idle or now - row.created_at > ABSOLUTE:
        row.ended_at = now
        db.add(row)
        return None
    row.last_seen_at = now
    db.add(row)
    return row


def end_session(db: Session, row: ConsoleSession, now: datetime) -> None:
    row.ended_at = now
    db.add(row)


def csrf_ok(row: ConsoleSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(row.csrf.encode(), str(presented).encode())
