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

from sqlalchemy import ColumnElement, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.store import Attempt, Branch, BranchMemberTotal, BranchMonth, Member, MemberTotal
from bot.store.hot import Standing  # one row type for the boards, hot path and exports alike
from bot.store.members import IS_ACTIVE
from bot.store.models import saved_id


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


# Core select (executed with db.execute): sqlmodel's select is typed for up to 4 columns.
_STANDING_ROW = sa_select(
    col(Attempt.member_id), col(Member.name), col(Branch.name), col(Attempt.score), col(Attempt.finished_at)
)


def _ordered(rows: list[Standing]) -> list[Standing]:
    far_future = datetime.max.replace(tzinfo=None)
    return sorted(rows, key=lambda r: (-r.points, (r.at.replace(tzinfo=None) if r.at else far_future), r.member_id))


def month_board(db: Session, month: str, branch_id: int | None = None) -> list[Standing]:
    """Finished monthly attempts, best score first, earlier completion breaking ties."""
    query = (
        _STANDING_ROW.join(Member, col(Member.id) == col(Attempt.member_id))
        .join(Branch, col(Branch.id) == col(Attempt.branch_id))
        .where(col(Attempt.month) == month, col(Attempt.finished_at).is_not(None))
    )
    if branch_id is not None:
        query = query.where(col(Attempt.branch_id) == branch_id)
    return _ordered([Standing(*row) for row in db.execute(query).all()])


def _finished(month: str, branch_id: int | None) -> list[ColumnElement[bool]]:
    conditions = [col(Attempt.month) == month, col(Attempt.finished_at).is_not(None)]
    if branch_id is not None:
        conditions.append(col(Attempt.branch_id) == branch_id)
    return conditions


def month_top(db: Session, month: str, branch_id: int | None = None, limit: int = 10) -> tuple[list[Standing], int]:
    """The month's top ``limit`` (the database reads them in index order, so a city of
    members costs no more than a branch) and how many finished."""
    # All branches: the first ``limit`` entries of ix_attempt_month_board. One branch: its
    # finishers through ix_attempt_board (month, branch_id), then sorted; sorting by
    # "score + 0" keeps SQLite, which keeps no statistics, from walking the whole month in
    # ix_attempt_month_board's order to find ten of one branch's.
    score = col(Attempt.score) if branch_id is None else col(Attempt.score) + 0
    query = (
        _STANDING_ROW.join(Member, col(Member.id) == col(Attempt.member_id))
        .join(Branch, col(Branch.id) == col(Attempt.branch_id))
        .where(*_finished(month, branch_id))
        .order_by(score.desc(), col(Attempt.finished_at), col(Attempt.member_id))
        .limit(limit)
    )
    return [Standing(*row) for row in db.execute(query).all()], month_finished(db, month, branch_id)


def month_finished(db: Session, month: str, branch_id: int | None = None) -> int:
    """How many finished the month's quiz (in one branch, or in all): from the per-branch
    month figures, at most one row per branch."""
    query = select(func.coalesce(func.sum(col(BranchMonth.finished)), 0)).where(col(BranchMonth.month) == month)
    if branch_id is not None:
        query = query.where(col(BranchMonth.branch_id) == branch_id)
    return int(db.exec(query).one())


def month_rank(db: Session, month: str, member_id: int, branch_id: int | None = None) -> tuple[int | None, int, int]:
    """(the member's place this month, or None if not finished; how many finished; the
    member's score). Ties go to whoever finished earlier, as on the board."""
    mine = db.exec(
        select(col(Attempt.score), col(Attempt.finished_at)).where(
            col(Attempt.member_id) == member_id, *_finished(month, branch_id)
        )
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
            (col(Attempt.score) > score)
            | ((col(Attempt.score) == score) & (col(Attempt.finished_at) < finished_at))
            | (
                (col(Attempt.score) == score)
                & (col(Attempt.finished_at) == finished_at)
                & (col(Attempt.member_id) < member_id)
            ),
        )
    ).one()
    return ahead + 1, total, score


def _totals(
    branch_id: int | None,
) -> tuple[type[MemberTotal] | type[BranchMemberTotal], list[ColumnElement[bool]]]:
    """The all-time totals to rank: every member's, or the points earned in one branch."""
    if branch_id is None:
        return MemberTotal, []
    return BranchMemberTotal, [col(BranchMemberTotal.branch_id) == branch_id]


def total_board(db: Session, branch_id: int | None = None, limit: int | None = None) -> list[Standing]:
    """All-time points (a branch's board counts the points earned in that branch), best
    first; ties go to whoever reached the total first. Members at 0 or below are left out."""
    model, scope = _totals(branch_id)
    query = (
        sa_select(  # Core select and execute: sqlmodel's select is typed for up to 4 columns
            col(model.member_id), col(Member.name), col(Branch.name), col(model.points), col(model.reached_at)
        )
        .join(Member, col(Member.id) == col(model.member_id))
        .join(Branch, col(Branch.id) == col(Member.branch_id))
        .where(*scope, col(model.points) > 0)
        .order_by(col(model.points).desc(), col(model.reached_at), col(model.member_id))
    )
    if limit is not None:
        query = query.limit(limit)
    return [Standing(*row) for row in db.execute(query).all()]


def branch_board(db: Session, month: str) -> list[BranchStanding]:
    """Branches by participation rate, then average score of those who finished."""
    members = dict(
        db.exec(select(col(Member.branch_id), func.count()).where(IS_ACTIVE).group_by(col(Member.branch_id))).all()
    )
    finished = {
        branch_id: (count, score_sum / count if count else 0.0)
        for branch_id, count, score_sum in db.exec(
            select(col(BranchMonth.branch_id), col(BranchMonth.finished), col(BranchMonth.score_sum)).where(
                col(BranchMonth.month) == month
            )
        ).all()
    }
    rows = []
    for row_id, name in db.exec(select(col(Branch.id), col(Branch.name))).all():
        branch_id = saved_id(row_id)
        rows.append(BranchStanding(branch_id, name, members.get(branch_id, 0), *finished.get(branch_id, (0, 0.0))))
    return sorted(rows, key=lambda r: (-r.participation, -r.average, r.name))
