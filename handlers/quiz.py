"""答题: the month's paper, one question at a time, with instant feedback.

The paper is the same for the whole branch; each member sees the options in an order
fixed when their attempt starts. The attempt remembers where the member is, so the quiz
resumes across days, and there is one attempt per member per month.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from bot.dialogs import DialogState
from bot.router import MemberContext
from bot.store import Attempt, Dialog, Paper, Question, lookups
from bot.store.models import saved_id
from handlers import asking
from quizzes import render
from quizzes.answers import looks_like_answer
from quizzes.monthly import ensure_paper
from quizzes.points import attempt_finished, award
from quizzes.standings import month_rank

DIALOG = "quiz"


@dataclass(frozen=True)
class QuizState(DialogState):
    """答题 waits on the next answer of this attempt (the attempt knows its position)."""

    attempt_id: int


# The answer path's reads, built once (see bot.store.lookups).
# The attempt row is locked (PostgreSQL; SQLite has one writer anyway), so two answers
# from one member handled by two instances at once are graded one after the other.
ATTEMPT_AND_PAPER = (
    select(Attempt, Paper)
    .join(Paper, col(Paper.id) == col(Attempt.paper_id))
    .where(col(Attempt.id) == bindparam("attempt_id"))
    .with_for_update(of=Attempt)
)
QUESTIONS = select(Question).where(col(Question.id).in_(bindparam("ids", expanding=True)))


def _month_label(month: str) -> str:
    year, mon = month.split("-")
    return f"{year}年{int(mon)}月"


def start(ctx: MemberContext) -> str:
    member = ctx.member
    cfg = ctx.config.quiz
    paper = ensure_paper(ctx.db, member.branch_id, ctx.month, cfg.questions_per_paper, cfg.categories, ctx.now)
    if paper is None:
        return "题库中暂时没有可用的题目，请联系管理员导入题库。"
    attempt = ctx.db.exec(
        select(Attempt).where(col(Attempt.member_id) == ctx.member_id, col(Attempt.paper_id) == paper.id)
    ).first()
    if attempt is not None and attempt.finished_at is not None:
        return _already_done(ctx, attempt, paper)
    if attempt is None:
        attempt = _new_attempt(ctx, paper)
        intro = (
            f"{_month_label(ctx.month)}党史党纪知识测试共 {len(paper.question_ids)} 题，每题 {cfg.points_per_correct} 分。"
            "直接回复选项字母作答；中途离开也没关系，再发「答题」即可继续。\n\n"
        )
    else:
        intro = f"欢迎回来，继续第 {attempt.position + 1} 题。\n\n"
    attempt.asked_at = ctx.now
    ctx.db.add(attempt)
    assert attempt.id is not None
    ctx.start_dialog(DIALOG, QuizState(attempt.id))
    return intro + _render(ctx.db, attempt, paper)


def _new_attempt(ctx: MemberContext, paper: Paper) -> Attempt:
    questions = ctx.db.exec(select(Question).where(col(Question.id).in_(paper.question_ids))).all()
    # Loading them now puts them in the session: rendering them later costs no query.
    orders = {str(q.id): render.order_for(q, f"{ctx.member_id}:{paper.id}:{q.id}") for q in questions}
    attempt = Attempt(
        member_id=ctx.member_id,
        paper_id=saved_id(paper.id),
        branch_id=ctx.member.branch_id,
        month=paper.month,
        option_orders=orders,
        started_at=ctx.now,
    )
    ctx.db.add(attempt)
    ctx.db.flush()
    return attempt


def _render(db: Session, attempt: Attempt, paper: Paper) -> str:
    qid = paper.question_ids[attempt.position]
    question = lookups.get(db, Question, qid)
    assert question is not None
    return render.question_text(
        question, attempt.option_orders[str(qid)], f"第 {attempt.position + 1}/{len(paper.question_ids)} 题"
    )


def answer(ctx: MemberContext, dialog: Dialog) -> str | None:
    """Grade an answer to the current question; None when the text is not an answer."""
    if not looks_like_answer(ctx.args):
        return None
    found = ctx.db.exec(ATTEMPT_AND_PAPER, params={"attempt_id": QuizState.load(dialog.data).attempt_id}).first()
    attempt, paper = found if found else (None, None)
    if attempt is None or attempt.finished_at is not None:
        ctx.end_dialog()
        return None
    if attempt.month != ctx.month:
        ctx.end_dialog()
        return f"{_month_label(attempt.month)}的测试已经结束。发送「答题」参加{_month_label(ctx.month)}的测试。"
    assert paper is not None
    qid = paper.question_ids[attempt.position]
    # This question and the next in one query: the next one is shown with the feedback.
    # Holding the list keeps both in the session (its identity map holds rows weakly).
    loaded = ctx.db.exec(QUESTIONS, params={"ids": paper.question_ids[attempt.position : attempt.position + 2]}).all()  # noqa: F841
    question = lookups.get(ctx.db, Question, qid)
    assert question is not None
    order = attempt.option_orders[str(qid)]
    problem, chosen, correct = asking.grade(ctx, question, order)
    if problem:
        return problem
    asking.record(
        ctx, question, chosen, correct, "monthly", attempt.asked_at or attempt.started_at, attempt_id=attempt.id
    )
    points = ctx.config.quiz.points_per_correct
    if correct:
        attempt.correct += 1
        attempt.score += points
        if points:
            award(
                ctx.db, attempt.member_id, attempt.branch_id, points, f"monthly:{attempt.month}", attempt.month, ctx.now
            )
    feedback = render.feedback(question, order, correct)
    attempt.position += 1
    if attempt.position >= len(paper.question_ids):
        attempt.finished_at = ctx.now
        attempt_finished(ctx.db, attempt.month, attempt.branch_id, attempt.score)
        ctx.db.add(attempt)
        ctx.end_dialog()
        ctx.db.flush()
        return feedback + "\n\n" + _summary(ctx, attempt, paper)
    attempt.asked_at = ctx.now
    ctx.db.add(attempt)
    return feedback + "\n\n" + _render(ctx.db, attempt, paper)


def _summary(ctx: MemberContext, attempt: Attempt, paper: Paper) -> str:
    rank, finished, _ = month_rank(ctx.db, attempt.month, attempt.member_id, attempt.branch_id)
    return (
        f"🎉 本月测试完成！答对 {attempt.correct}/{len(paper.question_ids)} 题，得 {attempt.score} 分。\n"
        f"目前在本支部排名第 {rank} 位（已完成 {finished} 人）。\n"
        "发送「排行榜」查看榜单，发送「积分」查看积分。"
    )


def _already_done(ctx: MemberContext, attempt: Attempt, paper: Paper) -> str:
    rank, _, _ = month_rank(ctx.db, attempt.month, attempt.member_id, attempt.branch_id)
    return (
        f"您已完成{_month_label(attempt.month)}的测试（每月一次），答对 {attempt.correct}/{len(paper.question_ids)} 题，"
        f"得 {attempt.score} 分，目前支部排名第 {rank} 位。下月测试发布后再来吧！"
    )


def stray_answer(ctx: MemberContext) -> str:
    """Letters sent when no question is waiting (e.g. after the quiz ended)."""
    if looks_like_answer(ctx.args):
        return "现在没有待回答的题目。发送「答题」参加本月测试，或发送「练习」「挑战」「复习」。"
    return ""


def hint(ctx: MemberContext, dialog: Dialog) -> str:
    attempt = ctx.db.get(Attempt, QuizState.load(dialog.data).attempt_id)
    if attempt is None or attempt.finished_at is not None or attempt.month != ctx.month:
        ctx.end_dialog()
        return "发送「答题」开始本月测试，发送「帮助」查看全部功能。"
    paper = ctx.db.get(Paper, attempt.paper_id)
    assert paper is not None
    return "您正在答题中，请直接回复选项字母作答（其他功能如「积分」「帮助」也可随时使用）。\n\n" + _render(
        ctx.db, attempt, paper
    )
