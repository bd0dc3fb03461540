"""练习 and 挑战: study between monthly tests.

Practice serves one question after another (from all categories or one named), with the
monthly quiz's feedback; its points count toward the total, capped per day, and never
toward the month's leaderboard. A challenge runs until the first wrong answer.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import select

from bot.dialogs import DialogState
from bot.router import MemberContext
from bot.store import Answer, PointsEntry, Question
from bot.store.models import ChallengeRun, Dialog
from handlers import asking
from quizzes import render
from quizzes.paper import in_categories
from quizzes.points import award

PRACTICE, CHALLENGE = "practice", "challenge"
STOP_WORDS = ("结束", "退出", "停止", "不练了")
RECENT = timedelta(days=7)


def _pick(ctx: MemberContext, category: str = "") -> Question | None:
    """A random active question, avoiding what this member answered in the last week."""
    rows = ctx.db.exec(select(Question.id, Question.category).where(Question.active == True)).all()
    pool = [qid for qid, cat in rows if not category or in_categories(cat, [category])]
    if not pool:
        return None
    recent = set(
        ctx.db.exec(
            select(Answer.question_id).where(Answer.member_id == ctx.member_id, Answer.answered_at >= ctx.now - RECENT)
        ).all()
    )
    fresh = [qid for qid in pool if qid not in recent] or pool
    return ctx.db.get(Question, random.choice(fresh))


@dataclass(frozen=True)
class PracticeState(DialogState):
    """练习 waits on question ``qid``, shown in ``order`` at ``asked_at``."""

    qid: int
    order: list[str]
    asked_at: datetime
    category: str = ""


@dataclass(frozen=True)
class ChallengeState(DialogState):
    """挑战 waits on question ``qid`` of challenge run ``run``, ``streak`` right so far."""

    qid: int
    order: list[str]
    asked_at: datetime
    run: int
    streak: int = 0


def _ask(
    ctx: MemberContext, kind: str, question: Question, header: str, state: Callable[[int, list[str]], DialogState]
) -> str:
    """Show ``question`` and wait for the answer in dialog ``kind``, with ``state(question id, order)``."""
    assert question.id is not None
    order = render.order_for(question, f"{ctx.inbound.key}:{question.id}")
    ctx.start_dialog(kind, state(question.id, order), expires_at=ctx.now + timedelta(hours=12))
    return render.question_text(question, order, header)


def _earned_today(ctx: MemberContext, prefix: str) -> int:
    return ctx.db.exec(
        select(func.coalesce(func.sum(PointsEntry.amount), 0)).where(
            PointsEntry.member_id == ctx.member_id, PointsEntry.reason == f"{prefix}:{ctx.now:%Y-%m-%d}"
        )
    ).one()


def _award(ctx: MemberContext, prefix: str, cap: int) -> str:
    earned = _earned_today(ctx, prefix)
    if earned >= cap:
        return f"（今日{'练习' if prefix == PRACTICE else '挑战'}积分已满 {cap} 分）"
    award(ctx.db, ctx.member_id, ctx.member.branch_id, 1, f"{prefix}:{ctx.now:%Y-%m-%d}", ctx.month, ctx.now)
    return f"（积分 +1，今日 {earned + 1}/{cap}）"


# ------------------------------------------------------------------ 练习


def start_practice(ctx: MemberContext) -> str:
    category = ctx.args.strip()
    question = _pick(ctx, category)
    if question is None:
        return (
            f"题库中没有「{category}」类的题目。可以试试：练习 党史、练习 党章、练习 党纪、练习 廉洁。"
            if category
            else "题库中暂时没有题目。"
        )
    intro = f"开始练习{('（' + category + '）') if category else ''}，答完一题自动出下一题，回复「结束」停止。\n\n"
    return intro + _ask(
        ctx, PRACTICE, question, "练习", lambda qid, order: PracticeState(qid, order, ctx.now, category)
    )


def practice_reply(ctx: MemberContext, dialog: Dialog) -> str | None:
    if ctx.args.strip() in STOP_WORDS:
        ctx.end_dialog()
        return "练习结束。发送「错题」看看需要复习的题目。"
    state = PracticeState.load(dialog.data)
    result = asking.answer_in_dialog(ctx, PRACTICE, state.qid, state.order, state.asked_at)
    if result.correct is None:
        return result.passed
    text = result.text
    if result.correct:
        text += "\n" + _award(ctx, PRACTICE, ctx.config.practice.daily_cap)
    following = _pick(ctx, state.category)
    if following is None:
        ctx.end_dialog()
        return text
    return (
        text
        + "\n\n"
        + _ask(ctx, PRACTICE, following, "练习", lambda qid, order: PracticeState(qid, order, ctx.now, state.category))
    )


def practice_hint(ctx: MemberContext, dialog: Dialog) -> str:
    return "练习中：请回复选项字母作答，回复「结束」停止练习。"


# ------------------------------------------------------------------ 挑战


def _best(ctx: MemberContext) -> int:
    return ctx.db.exec(
        select(func.coalesce(func.max(ChallengeRun.streak), 0)).where(ChallengeRun.member_id == ctx.member_id)
    ).one()


def start_challenge(ctx: MemberContext) -> str:
    question = _pick(ctx)
    if question is None:
        return "题库中暂时没有题目。"
    run = ChallengeRun(member_id=ctx.member_id, started_at=ctx.now)
    ctx.db.add(run)
    ctx.db.flush()
    best = _best(ctx)
    intro = f"挑战开始！连续答题，答错即结束。您的最佳纪录：{best} 题。\n\n"
    assert run.id is not None
    run_id = run.id
    return intro + _ask(
        ctx, CHALLENGE, question, "挑战第 1 题", lambda qid, order: ChallengeState(qid, order, ctx.now, run_id)
    )


def challenge_reply(ctx: MemberContext, dialog: Dialog) -> str | None:
    state = ChallengeState.load(dialog.data)
    if ctx.args.strip() in STOP_WORDS:
        ctx.end_dialog()
        return _end_run(ctx, state.run, state.streak, "挑战已停止。")
    result = asking.answer_in_dialog(ctx, CHALLENGE, state.qid, state.order, state.asked_at)
    if result.correct is None:
        return result.passed
    text = result.text
    if not result.correct:
        ctx.end_dialog()
        return text + "\n\n" + _end_run(ctx, state.run, state.streak, "挑战结束！")
    streak = state.streak + 1
    text += "\n" + _award(ctx, CHALLENGE, ctx.config.practice.challenge_daily_cap)
    run = ctx.db.get(ChallengeRun, state.run)
    if run is not None:
        run.streak = streak
        ctx.db.add(run)
    following = _pick(ctx)
    assert following is not None
    return (
        text
        + f"\n已连续答对 {streak} 题。\n\n"
        + _ask(
            ctx,
            CHALLENGE,
            following,
            f"挑战第 {streak + 1} 题",
            lambda qid, order: ChallengeState(qid, order, ctx.now, state.run, streak),
        )
    )


def _end_run(ctx: MemberContext, run_id: int, streak: int, head: str) -> str:
    run = ctx.db.get(ChallengeRun, run_id)
    if run is not None:
        run.streak, run.ended_at = streak, ctx.now
        ctx.db.add(run)
        ctx.db.flush()
    best = _best(ctx)
    record = "刷新了个人最佳纪录！" if streak and streak >= best else f"您的最佳纪录是 {best} 题。"
    return f"{head}本次连续答对 {streak} 题，{record}发送「挑战」再来一次。"


def challenge_hint(ctx: MemberContext, dialog: Dialog) -> str:
    return "挑战中：请回复选项字母作答，回复「结束」停止挑战。"
