"""A branch's paper for a month, assembled on first use (by 答题 or the monthly job)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.store import Paper, Question
from quizzes.paper import Candidate, assemble

RECENT_PAPERS = 12


def ensure_paper(db: Session, branch_id: int, month: str, size: int, categories: list[str], now: datetime) -> Paper | None:
    paper = db.exec(select(Paper).where(Paper.branch_id == branch_id, Paper.month == month)).first()
    if paper is not None:
        return paper
    candidates = [Candidate(qid, cat) for qid, cat in db.exec(select(Question.id, Question.category).where(Question.active == True)).all()]  # noqa: E712
    recent_papers = db.exec(
        select(Paper.question_ids).where(Paper.branch_id == branch_id, Paper.month < month)
        .order_by(Paper.month.desc()).limit(RECENT_PAPERS)  # type: ignore[attr-defined]
    ).all()
    recent = {qid for ids in recent_papers for qid in ids}
    question_ids = assemble(candidates, size, categories, recent, seed=f"{branch_id}:{month}")
    if not question_ids:
        return None
    paper = Paper(branch_id=branch_id, month=month, question_ids=question_ids, created_at=now)
    try:
        with db.begin_nested():
            db.add(paper)
    except IntegrityError:  # another instance assembled it at the same moment
        return db.exec(select(Paper).where(Paper.branch_id == branch_id, Paper.month == month)).one()
    return paper
