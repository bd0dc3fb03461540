"""Which branches a command may act on: the one home of that rule.

The router decides a sender's scope once per message, from the role read from the store:
a member or secretary reaches their own branch; an admin reaches every branch, or the one
branch (or 全部) a command's arguments name. A secretary who names another branch is
refused here, so that no handler ever has to check whose branch it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bot.store.models import Branch, Member, Role

ALL_BRANCHES = "全部"


@dataclass(frozen=True, slots=True)
class Scope:
    """``branch_id``: the one branch a command acts on (the sender's own, or the branch an
    admin named). ``branch_ids``: every branch the command may see; None for all of them.

    >>> Scope(3, (3,)).covers([3]), Scope(1, None).covers([2, 5])
    (True, True)
    """

    branch_id: int
    branch_ids: tuple[int, ...] | None

    @property
    def everything(self) -> bool:
        return self.branch_ids is None

    def covers(self, branch_ids: Iterable[int | None]) -> bool:
        if self.branch_ids is None:
            return True
        return all(b in self.branch_ids for b in branch_ids)


@dataclass(frozen=True, slots=True)
class BranchParam:
    """A command whose arguments may name a branch: the ``position``-th word (0 = the first),
    and whether 全部 is accepted there too."""

    position: int = 0
    allow_all: bool = False


def own(member: Member) -> Scope:
    return Scope(member.branch_id, (member.branch_id,))


def reach(member: Member) -> Scope:
    """Everything the sender's role may see: an admin every branch, anyone else their own."""
    if member.role == Role.ADMIN.value:
        return Scope(member.branch_id, None)
    return own(member)


@dataclass(frozen=True, slots=True)
class NotYours:
    """A secretary named a branch that is not theirs (or 全部): the reply says so."""

    named: str
    own_branch: str

    def message(self) -> str:
        if self.named == ALL_BRANCHES:
            return f"支部书记只能面向本支部（{self.own_branch}），选择「全部」支部仅限管理员。"
        return f"「{self.named}」不是您所在的支部。您只能管理本支部（{self.own_branch}）的事务。"


def named_scope(db: Session, member: Member, param: BranchParam, args: str) -> tuple[Scope, str] | NotYours:
    """(the scope, the arguments left for the handler) for a command that takes a branch
    name; NotYours when a secretary names another branch. An admin's named branch (or
    全部) is taken out of the arguments; a secretary naming their own branch leaves them
    as they were; a word that names no branch is the handler's."""
    words = args.split(" ") if args else []
    if len(words) <= param.position:
        return own(member), args
    head = words[param.position]
    rest = " ".join(words[: param.position] + words[param.position + 1 :])
    admin = member.role == Role.ADMIN.value
    if head == ALL_BRANCHES and param.allow_all:
        if admin:
            return Scope(member.branch_id, None), rest
        return NotYours(head, _name(db, member.branch_id))
    named = db.exec(select(Branch).where(col(Branch.name) == head)).first()
    if named is None or named.id is None:
        return own(member), args
    if admin:
        return Scope(named.id, (named.id,)), rest
    if named.id != member.branch_id:
        return NotYours(head, _name(db, member.branch_id))
    return own(member), args


def _name(db: Session, branch_id: int) -> str:
    branch = db.get(Branch, branch_id)
    return branch.name if branch else "本支部"


def all_branch_ids(db: Session) -> list[int]:
    return [b for b in db.exec(select(col(Branch.id)).order_by(col(Branch.id))).all() if b is not None]


def scope_branch_ids(db: Session, scope: Scope) -> list[int]:
    """The branches a scope covers, listed (every branch's id for an admin's 全部)."""
    return list(scope.branch_ids) if scope.branch_ids is not None else all_branch_ids(db)
