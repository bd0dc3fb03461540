"""The standings aggregates checked against their sources: after any change, every maintained
total equals what the points ledger and the finished attempts say."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import select

from bot.store import Attempt, BranchMemberTotal, BranchMonth, MemberTotal, PointsEntry


def assert_aggregates_match_the_ledger(store) -> None:
    """Every maintained figure equals what the ledger and the attempts say."""
    with store.session() as db:
        members, by_branch, months = {}, {}, defaultdict(lambda: [0, 0])
        for e in db.exec(select(PointsEntry)).all():
            for table, key in ((members, e.member_id), (by_branch, (e.branch_id, e.member_id))):
                points, at = table.get(key, (0, e.created_at))
                table[key] = (points + e.amount, max(at, e.created_at))
        for a in db.exec(select(Attempt).where(Attempt.finished_at.is_not(None))).all():  # type: ignore[union-attr]
            months[(a.month, a.branch_id)][0] += 1
            months[(a.month, a.branch_id)][1] += a.score
        assert members  # something to compare
        assert {t.member_id: (t.points, t.reached_at) for t in db.exec(select(MemberTotal)).all()} == members
        assert {
            (t.branch_id, t.member_id): (t.points, t.reached_at) for t in db.exec(select(BranchMemberTotal)).all()
        } == by_branch
        assert {(m.month, m.branch_id): [m.finished, m.score_sum] for m in db.exec(select(BranchMonth)).all()} == dict(
            months
        )
