"""Who is an active member: the one home of that rule.

A roster entry marked 已转出 keeps its history (answers, points, deliveries), but it is
a guest in chat, holds no role, and receives nothing: every recipient list, every role
check and every count of "the branch's members" goes through the helpers here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeGuard

from sqlmodel import Session, col, select

from bot.store.models import Member, MemberStatus, saved_id

IS_ACTIVE = Member.status == MemberStatus.ACTIVE.value  # a WHERE clause, for queries that join Member


def is_active(member: Member | None) -> TypeGuard[Member]:
    return member is not None and is_active_status(member.status)


def is_active_status(status: str) -> bool:
    """The rule on a bare status, for rows read without the ORM (``bot.store.hot``)."""
    return status == MemberStatus.ACTIVE.value


def active_members(*where: Any) -> Any:
    """``select(Member)`` limited to active members (add more conditions as arguments)."""
    return select(Member).where(IS_ACTIVE, *where)


def ids_of(members: Iterable[Member]) -> list[int]:
    """The members' ids, in the given order (for a campaign's recipients)."""
    return [saved_id(m.id) for m in members]


def only_active(db: Session, member_ids: Iterable[int]) -> list[int]:
    """The ids among ``member_ids`` that belong to active members, in ascending order."""
    wanted = sorted(set(member_ids))
    found: set[int | None] = set()  # the column is Optional to the type checker; ids are never None
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        found |= set(db.exec(select(col(Member.id)).where(col(Member.id).in_(chunk), IS_ACTIVE)).all())
    return [m for m in wanted if m in found]


def branch_members(db: Session, branch_ids: list[int]) -> list[Member]:
    """The branches' active members, by id: who a notice, a meeting or a follow-up is for."""
    return list(db.exec(active_members(col(Member.branch_id).in_(branch_ids)).order_by(col(Member.id))).all())


def reachable(member: Member) -> bool:
    """Whether a push can reach this member: bound to WeCom, or bound to the Official
    Account and still following it."""
    return bool(member.wecom_userid or (member.openid and member.subscribed))
