"""The writes behind the standings: the points ledger and the aggregates kept with it.

Every change to the ledger goes through ``award`` and every finished monthly attempt
through ``attempt_finished``. Each updates its aggregates with one atomic upsert
(INSERT ... ON CONFLICT DO UPDATE SET points = points + :n) in the caller's transaction,
never a read-modify-write in Python: two members finishing at once on PostgreSQL, or a
member's two messages handled by two processes, cannot lose an update, and a rolled-back
transaction takes its aggregate changes with it.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import case, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from bot.store import BranchMemberTotal, BranchMonth, MemberTotal, PointsEntry
from bot.store.models import table_of


@cache
def _upsert_statement(
    dialect: str, model: Any, keys: tuple[str, ...], adds: tuple[str, ...], with_reached_at: bool
) -> Any:
    """Built once per shape (values come as parameters): SQLAlchemy then reuses the
    compiled statement instead of building and keying a new one for every award."""
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = make(model.__table__)  # the table: a Core statement, not the ORM bulk-insert path
    table = model.__table__
    changes: dict[str, Any] = {name: table.c[name] + stmt.excluded[name] for name in adds}
    if with_reached_at:
        changes["reached_at"] = case(
            (stmt.excluded.reached_at > table.c.reached_at, stmt.excluded.reached_at), else_=table.c.reached_at
        )
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=changes)


def _upsert(
    db: Session, model: Any, keys: dict[str, Any], values: dict[str, int], reached_at: datetime | None = None
) -> None:
    """Insert the row, or add ``values`` to the existing one (and keep the later
    ``reached_at``), in one statement."""
    row = {**keys, **values} if reached_at is None else {**keys, **values, "reached_at": reached_at}
    stmt = _upsert_statement(db.get_bind().dialect.name, model, tuple(keys), tuple(values), reached_at is not None)
    db.execute(stmt, row)


LEDGER_ENTRY = insert(table_of(PointsEntry))


def award(
    db: Session, member_id: int, branch_id: int, amount: int, reason: str, month: str, at: datetime, kind: str = "earn"
) -> None:
    """Add a ledger entry (``amount`` may be negative for a correction or penalty) and
    the member's all-time and per-branch totals with it."""
    db.execute(
        LEDGER_ENTRY,
        {
            "member_id": member_id,
            "branch_id": branch_id,
            "amount": amount,
            "kind": kind,
            "reason": reason,
            "month": month,
            "created_at": at,
        },
    )
    _upsert(db, MemberTotal, {"member_id": member_id}, {"points": amount}, at)
    _upsert(db, BranchMemberTotal, {"branch_id": branch_id, "member_id": member_id}, {"points": amount}, at)


def attempt_finished(db: Session, month: str, branch_id: int, score: int) -> None:
    """Count a monthly attempt that has just finished with ``score`` in its branch's month."""
    _upsert(db, BranchMonth, {"month": month, "branch_id": branch_id}, {"finished": 1, "score_sum": score})
