"""题目统计 / 纠错 / 纠错列表: how questions perform, and mistakes members report."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from bot.router import MemberContext
from bot.store import Answer, Member, Question
from bot.store.models import QuestionReport

MIN_ANSWERS = 3
REPORT_WINDOW = timedelta(hours=1)


def _short(text: str, size: int = 24) -> str:
    return text if len(text) <= size else text[:size] + "…"


CORRECT_RATE = func.avg(case((col(Answer.is_correct) == True, 1.0), else_=0.0))


def hardest_questions(db: Session, limit: int = 10) -> list[tuple[int, int, float, float]]:
    """(question id, answers, correct rate, average seconds), lowest correct rate first,
    among questions answered at least MIN_ANSWERS times (题目统计 and the console alike)."""
    rows = db.exec(
        select(col(Answer.question_id), func.count(col(Answer.id)), CORRECT_RATE, func.avg(col(Answer.seconds_taken)))
        .group_by(col(Answer.question_id))
        .having(func.count(col(Answer.id)) >= MIN_ANSWERS)
        .order_by(CORRECT_RATE, func.count(col(Answer.id)).desc())
        .limit(limit)
    ).all()
    return [(qid, count, float(rate), float(seconds or 0)) for qid, count, rate, seconds in rows]


def answer_stats(db: Session, question_ids: list[int]) -> dict[int, tuple[int, float]]:
    """question id → (times answered, correct rate), in every mode."""
    if not question_ids:
        return {}
    rows = db.exec(
        select(col(Answer.question_id), func.count(col(Answer.id)), CORRECT_RATE)
        .where(col(Answer.question_id).in_(question_ids))
        .group_by(col(Answer.question_id))
    ).all()
    return {qid: (count, float(rate)) for qid, count, rate in rows}


def hardest(ctx: MemberContext) -> str:
    rows = hardest_questions(ctx.db)
    if not rows:
        return f"答题数据还不够：每道题至少被回答 {MIN_ANSWERS} 次后才参与统计。"
    lines = ["最难的 10 道题（按正确率从低到高）："]
    for i, (qid, count, correct, seconds) in enumerate(rows, start=1):
        question = ctx.db.get(Question, qid)
        lines.append(
            f"{i}. #{qid} {_short(question.stem if question else '')}：正确率 {correct:.0%}，"
            f"作答 {count} 次，平均用时 {seconds:.0f} 秒"
        )
    return "\n".join(lines)


def report(ctx: MemberContext) -> str:
    text = ctx.args.strip()
    if not text:
        return "请在「纠错」后写明问题，例如「纠错 第二个选项的年份有误」。"
    last = ctx.db.exec(
        select(Answer).where(col(Answer.member_id) == ctx.member_id).order_by(col(Answer.id).desc())
    ).first()
    if last is None or last.answered_at < ctx.now - REPORT_WINDOW:
        return "请在答完题后 1 小时内发送「纠错 内容」，这样才能对应到具体题目。"
    ctx.db.add(QuestionReport(member_id=ctx.member_id, question_id=last.question_id, text=text[:500], at=ctx.now))
    question = ctx.db.get(Question, last.question_id)
    return f"感谢反馈！已记录对「{_short(question.stem if question else '')}」的纠错意见，管理员会尽快核实。"


def reports(ctx: MemberContext) -> str:
    rows = ctx.db.exec(
        select(QuestionReport, col(Member.name), col(Question.stem))
        .join(Member, col(Member.id) == col(QuestionReport.member_id))
        .join(Question, col(Question.id) == col(QuestionReport.question_id))
        .order_by(col(QuestionReport.id).desc())
        .limit(10)
    ).all()
    if not rows:
        return "暂无纠错反馈。"
    lines = ["最近的纠错反馈："]
    for item, name, stem in rows:
        lines.append(
            f"· #{item.question_id} {_short(stem)}\n  {name}（{item.at.astimezone(ctx.config.tz):%m-%d %H:%M}）：{item.text}"
        )
    return "\n".join(lines)
