"""Leaderboards and points, read from the store.

Ordering rules live here once: higher score first, ties to whoever completed (or
reached the total) earlier, then the lower member id. The database sorts and counts
over indexes: month boards over the attempts (``ix_attempt_board``,
``ix_attempt_month_board``), all-time boards over the per-member totals, 排行榜 支部 over
the per-branch month figures. quizzes/points.py keeps those aggregates in the same
transaction as the ledger entries and finished attempts they summarise, so no reply
sums the ledger or scans a month of attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from bot.store import Attempt, Branch, BranchMemberTotal, BranchMonth, Member, MemberTotal, PointsEntry
from bot.store.members import IS_ACTIVE


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
    """The month's top ``limit`` (the database reads them in index order, so a city of
    members costs no more than a branch) and how many finished."""
    # All branches: the first ``limit`` entries of ix_attempt_month_board. One branch: its
    # finishers through ix_attempt_board (month, branch_id), then sorted; sorting by
    # "score + 0" keeps SQLite, which keeps no statistics, from walking the whole month in
    # ix_attempt_month_board's order to find ten of one branch's.
    score = Attempt.score if branch_id is None else Attempt.score + 0
    query = (
        select(Attempt.member_id, Member.name, Branch.name, Attempt.score, Attempt.finished_at)
        .join(Member, Member.id == Attempt.member_id)
        .join(Branch, Branch.id == Attempt.branch_id)
        .where(*_finished(month, branch_id))
        .order_by(score.desc(), Attempt.finished_at, Attempt.member_id)  # type: ignore[attr-defined]
        .limit(limit)
    )
    return [Standing(*row) for row in db.exec(query).all()], month_finished(db, month, branch_id)


def month_finished(db: Session, month: str, branch_id: int | None = None) -> int:
    """How many finished the month's quiz (in one branch, or in all): from the per-branch
    month figures, at most one row per branch."""
    query = select(func.coalesce(func.sum(BranchMonth.finished), 0)).where(BranchMonth.month == month)
    if branch_id is not None:
        query = query.where(BranchMonth.branch_id == branch_id)
    return int(db.exec(query).one())


def month_rank(db: Session, month: str, member_id: int, branch_id: int | None = None) -> tuple[int | None, int, int]:
    """(the member's place this month, or None if not finished; how many finished; the
    member's score). Ties go to whoever finished earlier, as on the board."""
    mine = db.exec(
        select(Attempt.score, Attempt.finished_at).where(Attempt.member_id == member_id, *_finished(month, branch_id))
    ).first()
    total = month_finished(db, month, branch_id)
    if mine is None:
        return None, total, 0
    score, finished_at = mine
    ahead = db.exec(
        select(func.count())
        .select_from(Attempt)
        .where(
            *_finished(month, branch_id),
            (Attempt.score > score)
            | ((Attempt.score == score) & (Attempt.finished_at < finished_at))  # type: ignore[operator]
            | ((Attempt.score == score) & (Attempt.finished_at == finished_at) & (Attempt.member_id < member_id)),
        )
    ).one()
    return ahead + 1, total, score


def _totals(branch_id: int | None):
    """The all-time totals to rank: every member's, or the points earned in one branch."""
    if branch_id is None:
        return MemberTotal, []
    return BranchMemberTotal, [BranchMemberTotal.branch_id == branch_id]


def total_board(db: Session, branch_id: int | None = None, limit: int | None = None) -> list[Standing]:
    """All-time points (a branch's board counts the points earned in that branch), best
    first; ties go to whoever reached the total first. Members at 0 or below are left out."""
    model, scope = _totals(branch_id)
    query = (
        select(model.member_id, Member.name, Branch.name, model.points, model.reached_at)
        .join(Member, Member.id == model.member_id)
        .join(Branch, Branch.id == Member.branch_id)
        .where(*scope, model.points > 0)
        .order_by(model.points.desc(), model.reached_at, model.member_id)  # type: ignore[attr-defined]
    )
    if limit is not None:
        query = query.limit(limit)
    return [Standing(*row) for row in db.exec(query).all()]


def total_rank(db: Session, member_id: int, branch_id: int | None = None) -> tuple[int | None, int, int]:
    """(the member's all-time place, or None if they have no points; how many have
    points; the member's points), counted by the database as on the board."""
    model, scope = _totals(branch_id)
    count = db.exec(select(func.count()).select_from(model).where(*scope, model.points > 0)).one()
    mine = db.exec(select(model.points, model.reached_at).where(*scope, model.member_id == member_id)).first()
    if mine is None or mine[0] <= 0:
        return None, count, mine[0] if mine else 0
    points, reached_at = mine
    ahead = db.exec(
        select(func.count())
        .select_from(model)
        .where(
            *scope,
            (model.points > points)
            | ((model.points == points) & (model.reached_at < reached_at))
            | ((model.points == points) & (model.reached_at == reached_at) & (model.member_id < member_id)),
        )
    ).one()
    return ahead + 1, count, points


def branch_board(db: Session, month: str) -> list[BranchStanding]:
    """Branches by participation rate, then average score of those who finished."""
    members = dict(db.exec(select(Member.branch_id, func.count()).where(IS_ACTIVE).group_by(Member.branch_id)).all())
    finished = {
        branch_id: (count, score_sum / count if count else 0.0)
        for branch_id, count, score_sum in db.exec(
            select(BranchMonth.branch_id, BranchMonth.finished, BranchMonth.score_sum).where(BranchMonth.month == month)
        ).all()
    }
    rows = [
        BranchStanding(branch_id, name, members.get(branch_id, 0), *finished.get(branch_id, (0, 0.0)))
        for branch_id, name in db.exec(select(Branch.id, Branch.name)).all()
    ]
    return sorted(rows, key=lambda r: (-r.participation, -r.average, r.name))


def member_points(db: Session, member_id: int, month: str) -> tuple[int, int]:
    """(points earned this month, points in total): the total is kept per member; the
    month sums the member's entries for that month (``ix_pointsentry_member_month``)."""
    total = db.exec(select(MemberTotal.points).where(MemberTotal.member_id == member_id)).first()
    this_month = db.exec(
        select(func.coalesce(func.sum(PointsEntry.amount), 0)).where(
            PointsEntry.member_id == member_id, PointsEntry.month == month
        )
    ).one()
    return int(this_month), int(total or 0)
