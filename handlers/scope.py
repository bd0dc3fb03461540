"""Which branch a secretary's or admin's command is about.

A secretary always works on their own branch; an admin may name a branch (or 全部) as
the first word. Members marked 已转出 are never recipients.
"""

from __future__ import annotations

from sqlmodel import select

from bot.router import Context
from bot.store import Branch, Member, Role
from bot.store.members import branch_members


def is_admin(ctx: Context) -> bool:
    return ctx.member is not None and ctx.member.role == Role.ADMIN.value


def own_branch(ctx: Context) -> Branch:
    assert ctx.member is not None
    branch = ctx.db.get(Branch, ctx.member.branch_id)
    assert branch is not None
    return branch


def pick_branches(ctx: Context, text: str, allow_all: bool = True) -> tuple[list[Branch], str]:
    """(branches, the rest of the text). An admin's first word may name a branch or 全部."""
    if not is_admin(ctx):
        return [own_branch(ctx)], text
    head, _, rest = text.partition(" ")
    if allow_all and head == "全部":
        return list(ctx.db.exec(select(Branch).order_by(Branch.id)).all()), rest.strip()
    named = ctx.db.exec(select(Branch).where(Branch.name == head)).first() if head else None
    if named is not None:
        return [named], rest.strip()
    return [own_branch(ctx)], text


def members_of(ctx: Context, branch_ids: list[int]) -> list[Member]:
    return branch_members(ctx.db, branch_ids)


def names(members: list[Member], limit: int = 20) -> str:
    shown = "、".join(m.name for m in members[:limit])
    return shown + (f" 等 {len(members)} 人" if len(members) > limit else "")
