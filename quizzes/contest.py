"""The 抢答赛's rules, shared by the chat handlers and the ticking job."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from bot.store import Member
from bot.store.models import Contest, ContestPlayer

JOIN_WINDOW = timedelta(minutes=2)
ANSWER_WINDOW = timedelta(seconds=60)
PLACE_POINTS = {1: 10, 2: 8, 3: 6}
DEFAULT_SIZE, MAX_SIZE = 5, 20


def standings(db: Session, contest: Contest) -> list[tuple[str, int]]:
    """(name, score), best first; ties in joining order."""
    rows = db.exec(
        select(col(Member.name), col(ContestPlayer.score))
        .join(Member, col(Member.id) == col(ContestPlayer.member_id))
        .where(col(ContestPlayer.contest_id) == contest.id)
        .order_by(col(ContestPlayer.score).desc(), col(ContestPlayer.id))
    ).all()
    return [(name, score) for name, score in rows]


def standings_text(db: Session, contest: Contest, title: str) -> str:
    lines = [title]
    for rank, (name, score) in enumerate(standings(db, contest), start=1):
        lines.append(f"{rank}. {name} {score} 分")
    return "\n".join(lines)
