"""Asking one question and grading the answer, the same way in every mode (monthly quiz,
practice, challenge, review); every answer is recorded and feeds the wrong-answer book."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert
from sqlmodel import col, select

from bot.router import MemberContext
from bot.store import Answer, Question
from bot.store.models import ReviewCard, table_of
from quizzes.answers import is_correct, looks_like_answer, parse
from quizzes.letters import LETTERS
from quizzes.render import feedback
from quizzes.review import review

# Built once (see bot.store.lookups), on the table so that executing it skips the
# ORM bulk-insert path; the answer is written at once, not at flush.
ANSWER = insert(table_of(Answer))
CARD = select(ReviewCard).where(
    col(ReviewCard.member_id) == bindparam("member_id"), col(ReviewCard.question_id) == bindparam("question_id")
)


def grade(ctx: MemberContext, question: Question, order: list[str]) -> tuple[str, list[str], bool]:
    """(a hint for a malformed answer or "", the chosen option ids, whether right)."""
    parsed = parse(ctx.args, question.kind, len(order))
    if parsed.problem:
        return parsed.problem, [], False
    chosen = [order[LETTERS.index(letter)] for letter in parsed.letters]
    return "", chosen, is_correct(chosen, question.answer)


@dataclass(frozen=True, slots=True)
class Answered:
    """What a reply to a dialog's question came to. ``correct`` is None unless the answer
    was graded; then ``text`` is a hint to say (a malformed answer, a retired question),
    or empty when the message was no answer at all and the dialog lets it pass."""

    text: str = ""
    correct: bool | None = None

    @property
    def passed(self) -> str | None:
        """What the dialog says when the answer was not graded (None: not meant for it)."""
        return self.text or None


def answer_in_dialog(ctx: MemberContext, mode: str, question_id: int, order: list[str], asked_at: datetime) -> Answered:
    """Grade a reply to the question a dialog is waiting on, shown in ``order`` at ``asked_at``."""
    if not looks_like_answer(ctx.args):
        return Answered()
    question = ctx.db.get(Question, question_id)
    if question is None:
        ctx.end_dialog()
        return Answered("这道题已下线，请重新开始。")
    problem, chosen, correct = grade(ctx, question, order)
    if problem:
        return Answered(problem)
    record(ctx, question, chosen, correct, mode, asked_at)
    return Answered(feedback(question, order, correct), correct)


def record(
    ctx: MemberContext,
    question: Question,
    chosen: list[str],
    correct: bool,
    mode: str,
    asked_at: datetime | None,
    attempt_id: int | None = None,
) -> None:
    """Keep the answer, and move the question in or through the wrong-answer book."""
    assert question.id is not None
    seconds = max((ctx.now - asked_at).total_seconds(), 0.0) if asked_at else 0.0
    ctx.db.execute(
        ANSWER,
        {
            "attempt_id": attempt_id,
            "mode": mode,
            "member_id": ctx.member_id,
            "question_id": question.id,
            "chosen": chosen,
            "is_correct": correct,
            "seconds_taken": seconds,
            "answered_at": ctx.now,
        },
    )
    card = ctx.db.exec(CARD, params={"member_id": ctx.member_id, "question_id": question.id}).first()
    if card is None and correct:
        return
    if card is None:
        card = ReviewCard(member_id=ctx.member_id, question_id=question.id, card="", due=ctx.now, created_at=ctx.now)
    elif card.graduated_at is not None:
        if correct:
            return
        card.graduated_at, card.card = None, ""  # wrong again: back into the book from the start
    result = review(card.card or None, card_id=question.id, correct=correct, when=ctx.now)
    card.card, card.due, card.stability = result.card, result.due, result.stability
    if not correct:
        card.lapses += 1
    if result.graduated:
        card.graduated_at = ctx.now
    ctx.db.add(card)
