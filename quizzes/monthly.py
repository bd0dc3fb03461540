"""A branch's paper for a month, assembled on first use (by 答题 or the monthly job)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.store import Answer, Paper, Question
from bot.store.models import saved_id
from quizzes.paper import Candidate, assemble, effective_difficulty

RECENT_PAPERS = 12


def ensure_paper(
    db: Session, branch_id: int, month: str, size: int, categories: list[str], now: datetime
) -> Paper | None:
    paper = db.exec(select(Paper).where(col(Paper.branch_id) == branch_id, col(Paper.month) == month)).first()
    if paper is not None:
        return paper
    candidates = candidates_with_difficulty(db)
    recent_papers = db.exec(
        select(col(Paper.question_ids))
        .where(col(Paper.branch_id) == branch_id, col(Paper.month) < month)
        .order_by(col(Paper.month).desc())
        .limit(RECENT_PAPERS)
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
        return db.exec(select(Paper).where(col(Paper.branch_id) == branch_id, col(Paper.month) == month)).one()
    return paper


def answer_stats(db: Session) -> dict[int, tuple[int, int]]:
    """Question id → (answers, correct answers), review answers aside: the 错题本 asks a
    member again exactly what they got wrong, which would make every question look hard."""
    rows = db.exec(
        select(col(Answer.question_id), func.count(), func.sum(func.cast(col(Answer.is_correct), Integer)))
        .where(col(Answer.mode) != "review")
        .group_by(col(Answer.question_id))
    ).all()
    return {qid: (int(total), int(right or 0)) for qid, total, right in rows}


def candidates_with_difficulty(db: Session) -> list[Candidate]:
    stats = answer_stats(db)
    rows = db.exec(
        select(col(Question.id), col(Question.category), col(Question.difficulty)).where(col(Question.active) == True)
    ).all()
    return [
        Candidate(saved_id(qid), category, effective_difficulty(difficulty, *stats.get(saved_id(qid), (0, 0))))
        for qid, category, difficulty in rows
    ]
