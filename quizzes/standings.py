"""Leaderboards and points, read from the store.

Ordering rules live here once: higher score first, ties to whoever completed (or
reached the total) earlier. Queries aggregate in SQL over indexed columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from bot.store import Attempt, Branch, Member, PointsEntry


@dataclass(frozen=True)
class Standing:
    member_id: int
    name: str
    branch: str
    points: int
    at: datetime | None  # completion time (month) or time the total was reached


@dataclass(frozen=True)
class BranchStanding:
    branch_id: int
    name: str
    members: int
    finished: int
    average: float

    @property
    def participation(self) -> float:
        return self.finished / self.members if self.members else 0.0


def _ordered(rows: list[Standing]) -> list[Standing]:
    far_future = datetime.max.replace(tzinfo=None)
    return sorted(rows, key=lambda r: (-r.points, (r.at.replace(tzinfo=None) if r.at else far_future), r.member_id))


def month_board(db: Session, month: str, branch_id: int | None = None) -> list[Standing]:
    """Finished monthly attempts, best score first, earlier completion breaking ties."""
    query = (
        select(Attempt.member_id, Member.name, Branch.name, Attempt.score, Attempt.finished_at)
        .join(Member, Member.id == Attempt.member_id)
        .join(Branch, Branch.id == Attempt.branch_id)
        .where(Attempt.month == month, Attempt.finished_at.is_not(None))  # type: ignore[union-attr]
    )
    if branch_id is not None:
        query = query.where(Attempt.branch_id == branch_id)
    return _ordered([Standing(*row) for row in db.exec(query).all()])


def _finished(month: str, branch_id: int | None):
    conditions = [Attempt.month == month, Attempt.finished_at.is_not(None)]  # type: ignore[union-attr]
    if branch_id is not None:
        conditions.append(Attempt.branch_id == branch_id)
    return conditions


def month_top(db: Session, month: str, branch_id: int | None = None, limit: int = 10) -> tuple[list[Standing], int]:
    """The month's top ``limit`` (the database sorts, so a city of members costs no more
    than a branch) and how many finished."""
    query = (
        select(Attempt.member_id, Member.name, Branch.name, Attempt.score, Attempt.finished_at)
        .join(Member, Member.id == Attempt.member_id)
        .join(Branch, Branch.id == Attempt.branch_id)
        .where(*_finished(month, branch_id))
        .order_by(Attempt.score.desc(), Attempt.finished_at, Attempt.member_id)  # type: ignore[attr-defined]
        .limit(limit)
    )
    total = db.exec(select(func.count(Attempt.id)).where(*_finished(month, branch_id))).one()
    return [Standing(*row) for row in db.exec(query).all()], total


def month_rank(db: Session, month: str, member_id: int, branch_id: int | None = None) -> tuple[int | None, int, int]:
    """(the member's place this month, or None if not finished; how many finished; the
    member's score). Ties go to whoever finished earlier, as on the board."""
    mine = db.exec(select(Attempt).where(Attempt.member_id == member_id, *_finished(month, branch_id))).first()
    total = db.exec(select(func.count(Attempt.id)).where(*_finished(month, branch_id))).one()
    if mine is None:
        return None, total, 0
    ahead = db.exec(select(func.count(Attempt.id)).where(
        *_finished(month, branch_id),
        (Attempt.score > mine.score)
        | ((Attempt.score == mine.score) & (Attempt.finished_at < mine.finished_at))  # type: ignore[operator]
        | ((Attempt.score == mine.score) & (Attempt.finished_at == mine.finished_at) & (Attempt.member_id < member_id)),
    )).one()
    return ahead + 1, total, mine.score


def total_board(db: Session, branch_id: int | None = None) -> list[Standing]:
    """All-time points from the ledger; ties go to whoever reached the total first."""
    query = (
        select(PointsEntry.member_id, Member.name, Branch.name,
               func.sum(PointsEntry.amount), func.max(PointsEntry.created_at))
        .join(Member, Member.id == PointsEntry.member_id)
        .join(Branch, Branch.id == Member.branch_id)
        .group_by(PointsEntry.member_id, Member.name, Branch.name)
    )
    if branch_id is not None:
        query = query.where(PointsEntry.branch_id == branch_id)
    rows = [Standing(m, n, b, int(p or 0), _aware(at)) for m, n, b, p, at in db.exec(query).all()]
    return _ordered([r for r in rows if r.points > 0])


def branch_board(db: Session, month: str) -> list[BranchStanding]:
    """Branches by participation rate, then average score of those who finished."""
    members = dict(db.exec(select(Member.branch_id, func.count(Member.id)).where(Member.status == "在册")
                           .group_by(Member.branch_id)).all())
    finished = {
        branch_id: (count, float(avg or 0))
        for branch_id, count, avg in db.exec(
            select(Attempt.branch_id, func.count(Attempt.id), func.avg(Attempt.score))
            .where(Attempt.month == month, Attempt.finished_at.is_not(None))  # type: ignore[union-attr]
            .group_by(Attempt.branch_id)
        ).all()
    }
    rows = [
        BranchStanding(branch.id, branch.name, members.get(branch.id, 0), *finished.get(branch.id, (0, 0.0)))
        for branch in db.exec(select(Branch)).all()
        if branch.id is not None
    ]
    return sorted(rows, key=lambda r: (-r.participation, -r.average, r.name))


def position(rows: list[Standing], member_id: int) -> int | None:
    for index, row in enumerate(rows, start=1):
        if row.member_id == member_id:
            return index
    return None


def member_points(db: Session, member_id: int, month: str) -> tuple[int, int]:
    """(points earned this month, points in total)."""
    total = db.exec(select(func.coalesce(func.sum(PointsEntry.amount), 0)).where(PointsEntry.member_id == member_id)).one()
    this_month = db.exec(
        select(func.coalesce(func.sum(PointsEntry.amount), 0)).where(
            PointsEntry.member_id == member_id, PointsEntry.month == month
        )
    ).one()
    return int(this_month), int(total)


def _aware(value: datetime | str | None) -> datetime | None:
    # func.max() bypasses the column type on SQLite and returns the stored text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value
