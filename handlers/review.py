"""错题 / 复习: the wrong-answer book, scheduled with FSRS.

Every wrong answer, in any mode, puts the question in the book; 复习 serves the ones
that are due, up to ``review.daily_limit`` a day.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.dialogs import DialogState
from bot.router import MemberContext
from bot.store import Answer, Question
from bot.store.models import Dialog, ReviewCard
from handlers import asking
from quizzes import render

DIALOG = "review"


def _end_of_today(ctx: MemberContext) -> datetime:
    local = ctx.now.astimezone(ctx.config.tz)
    return (local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)).astimezone(UTC)


def _start_of_today(ctx: MemberContext) -> datetime:
    return _end_of_today(ctx) - timedelta(days=1)


def _book(ctx: MemberContext) -> SelectOfScalar[ReviewCard]:
    return select(ReviewCard).where(col(ReviewCard.member_id) == ctx.member_id, col(ReviewCard.graduated_at).is_(None))


def _reviewed_today(ctx: MemberContext) -> int:
    return ctx.db.exec(
        select(func.count(col(Answer.id))).where(
            col(Answer.member_id) == ctx.member_id,
            col(Answer.mode) == DIALOG,
            col(Answer.answered_at) >= _start_of_today(ctx),
        )
    ).one()


def _due(ctx: MemberContext) -> list[ReviewCard]:
    left = ctx.config.review.daily_limit - _reviewed_today(ctx)
    if left <= 0:
        return []
    return list(
        ctx.db.exec(
            _book(ctx).where(col(ReviewCard.due) <= _end_of_today(ctx)).order_by(col(ReviewCard.due)).limit(left)
        ).all()
    )


def book(ctx: MemberContext) -> str:
    cards = ctx.db.exec(_book(ctx)).all()
    if not cards:
        return "错题本是空的。答错的题会自动收进错题本，按记忆规律安排复习。"
    categories: Counter[str] = Counter()
    for card in cards:
        question = ctx.db.get(Question, card.question_id)
        categories[question.category if question else "其他"] += 1
    due = len(_due(ctx))
    lines = [f"错题本共 {len(cards)} 题："] + [f"· {name}：{count} 题" for name, count in categories.most_common()]
    lines.append(f"今天有 {due} 题该复习了，发送「复习」开始。" if due else "今天没有到期的错题，按时复习记得更牢。")
    return "\n".join(lines)


def start(ctx: MemberContext) -> str:
    due = _due(ctx)
    if not due:
        if _reviewed_today(ctx) >= ctx.config.review.daily_limit:
            return f"今天已复习 {ctx.config.review.daily_limit} 题，达到每日上限，明天继续。"
        return "今天没有需要复习的错题。发送「错题」查看错题本。"
    return f"今天有 {len(due)} 道错题需要复习。\n\n" + _ask(ctx, [c.question_id for c in due], 1, len(due))


@dataclass(frozen=True)
class ReviewState(DialogState):
    """复习 waits on ``queue[0]``, shown in ``order`` at ``asked_at``: question ``number`` of ``total``."""

    queue: list[int]
    order: list[str]
    asked_at: datetime
    number: int
    total: int


def _ask(ctx: MemberContext, queue: list[int], number: int, total: int) -> str:
    question = ctx.db.get(Question, queue[0])
    assert question is not None
    order = render.order_for(question, f"{ctx.inbound.key}:{question.id}")
    ctx.start_dialog(DIALOG, ReviewState(queue, order, ctx.now, number, total), expires_at=_end_of_today(ctx))
    return render.question_text(question, order, f"复习 {number}/{total}")


def reply(ctx: MemberContext, dialog: Dialog) -> str | None:
    state = ReviewState.load(dialog.data)
    result = asking.answer_in_dialog(ctx, DIALOG, state.queue[0], state.order, state.asked_at)
    if result.correct is None:
        return result.passed
    text = result.text
    card = ctx.db.exec(_book(ctx).where(col(ReviewCard.question_id) == state.queue[0])).first()
    if card is None:
        text += "\n这道题已经掌握，移出错题本。"
    rest = state.queue[1:]
    if not rest:
        ctx.end_dialog()
        return text + "\n\n今天的复习完成了！"
    return text + "\n\n" + _ask(ctx, rest, state.number + 1, state.total)


def hint(ctx: MemberContext, dialog: Dialog) -> str:
    return "复习中：请回复选项字母作答。"
