"""The audit log: one line per broadcast, role change, import, export or refusal."""

from __future__ import annotations

import getpass
from datetime import datetime

from sqlmodel import Session

from bot.store import Member
from bot.store.models import AuditEntry


def actor_of(member: Member | None) -> str:
    if member is None:
        return "未绑定用户"
    return f"{member.name}（{member.role}，#{member.id}）"


def cli_actor() -> str:
    try:
        return f"命令行（{getpass.getuser()}）"
    except Exception:  # no user name in some containers
        return "命令行"


def record(db: Session, at: datetime, actor: str, action: str, detail: str) -> None:
    db.add(AuditEntry(at=at, actor=actor, action=action, detail=detail[:2000]))
