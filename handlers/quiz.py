"""答题: the month's paper, one question at a time, with instant feedback.

The paper is the same for the whole branch; each member sees the options in an order
fixed when their attempt starts. The attempt remembers where the member is, so the quiz
resumes across days, and there is one attempt per member per month.
"""

from __future__ import annotations

from sqlmodel import Session, select

from bot.router import Context
from bot.store import Answer, Attempt, Dialog, Member, Paper, PointsEntry, Question
from quizzes.answers import is_correct, looks_like_answer, parse
from quizzes.bank import LETTERS
from quizzes.monthly import ensure_paper
from quizzes.paper import option_order
from quizzes.standings import month_board, position

DIALOG = "quiz"


def _month_label(month: str) -> str:
    year, mon = month.split("-")
    return f"{year}年{int(mon)}月"


def start(ctx: Context) -> str:
    member = ctx.member
    assert member is not None and member.id is not None
    cfg = ctx.config.quiz
    paper = ensure_paper(ctx.db, member.branch_id, ctx.month, cfg.questions_per_paper, cfg.categories, ctx.now)
    if paper is None:
        return "题库中暂时没有可用的题目，请联系管理员导入题库。"
    attempt = ctx.db.exec(select(Attempt).where(Attempt.member_id == member.id, Attempt.paper_id == paper.id)).first()
    if attempt is not None and attempt.finished_at is not None:
        return _already_done(ctx, attempt, paper)
    if attempt is None:
        attempt = _new_attempt(ctx, member, paper)
        intro = (
            f"{_month_label(ctx.month)}党史党纪知识测试共 {len(paper.question_ids)} 题，每题 {cfg.points_per_correct} 分。"
            "直接回复选项字母作答；中途离开也没关系，再发「答题」即可继续。\n\n"
        )
    else:
        intro = f"欢迎回来，继续第 {attempt.position + 1} 题。\n\n"
    attempt.asked_at = ctx.now
    ctx.db.add(attempt)
    ctx.start_dialog(DIALOG, {"attempt_id": attempt.id})
    return intro + _render(ctx.db, attempt, paper)


def _new_attempt(ctx: Context, member: Member, paper: Paper) -> Attempt:
    orders: dict[str, list[str]] = {}
    questions = ctx.db.exec(select(Question).where(Question.id.in_(paper.question_ids))).all()  # type: ignore[union-attr]
    for question in questions:  # now in the session: rendering them costs no further query
        qid = question.id
        ids = [o["id"] for o in question.options]
        orders[str(qid)] = option_order(ids, f"{member.id}:{paper.id}:{qid}", shuffle=question.kind != "判断")
    attempt = Attempt(member_id=member.id, paper_id=paper.id, branch_id=member.branch_id, month=paper.month,
                      option_orders=orders, started_at=ctx.now)
    ctx.db.add(attempt)
    ctx.db.flush()
    return attempt


def _render(db: Session, attempt: Attempt, paper: Paper) -> str:
    qid = paper.question_ids[attempt.position]
    question = db.get(Question, qid)
    assert question is not None
    texts = {o["id"]: o["text"] for o in question.options}
    lines = [f"第 {attempt.position + 1}/{len(paper.question_ids)} 题（{question.kind}）", question.stem]
    if question.kind == "判断":
        lines.append("请回复「对」或「错」。")
    else:
        order = attempt.option_orders[str(qid)]
        lines += [f"{LETTERS[i]}. {texts[oid]}" for i, oid in enumerate(order)]
        lines.append("请回复一个字母，如 A。" if question.kind == "单选" else "请回复全部正确选项的字母，如 AC。")
    return "\n".join(lines)


def answer(ctx: Context, dialog: Dialog) -> str | None:
    """Grade an answer to the current question; None when the text is not an answer."""
    if not looks_like_answer(ctx.args):
        return None
    attempt = ctx.db.get(Attempt, dialog.data.get("attempt_id"))
    if attempt is None or attempt.finished_at is not None:
        ctx.end_dialog()
        return None
    if attempt.month != ctx.month:
        ctx.end_dialog()
        return f"{_month_label(attempt.month)}的测试已经结束。发送「答题」参加{_month_label(ctx.month)}的测试。"
    paper = ctx.db.get(Paper, attempt.paper_id)
    assert paper is not None
    qid = paper.question_ids[attempt.position]
    question = ctx.db.get(Question, qid)
    assert question is not None
    order = attempt.option_orders[str(qid)]
    parsed = parse(ctx.args, question.kind, len(order))
    if parsed.problem:
        return parsed.problem
    chosen = [order[LETTERS.index(letter)] for letter in parsed.letters]
    correct = is_correct(chosen, question.answer)
    asked = attempt.asked_at or attempt.started_at
    ctx.db.add(Answer(attempt_id=attempt.id, member_id=attempt.member_id, question_id=qid, chosen=chosen,
                      is_correct=correct, seconds_taken=max((ctx.now - asked).total_seconds(), 0.0), answered_at=ctx.now))
    points = ctx.config.quiz.points_per_correct
    if correct:
        attempt.correct += 1
        attempt.score += points
        if points:
            ctx.db.add(PointsEntry(member_id=attempt.member_id, branch_id=attempt.branch_id, amount=points,
                                   reason=f"monthly:{attempt.month}", month=attempt.month, created_at=ctx.now))
    feedback = _feedback(question, order, correct)
    attempt.position += 1
    if attempt.position >= len(paper.question_ids):
        attempt.finished_at = ctx.now
        ctx.db.add(attempt)
        ctx.end_dialog()
        ctx.db.flush()
        return feedback + "\n\n" + _summary(ctx, attempt, paper)
    attempt.asked_at = ctx.now
    ctx.db.add(attempt)
    return feedback + "\n\n" + _render(ctx.db, attempt, paper)


def _feedback(question: Question, order: list[str], correct: bool) -> str:
    texts = {o["id"]: o["text"] for o in question.options}
    if question.kind == "判断":
        key = texts[question.answer[0]]
    else:
        key = "".join(LETTERS[order.index(oid)] for oid in sorted(question.answer, key=order.index))
        if question.kind == "单选":
            key += f"（{texts[question.answer[0]]}）"
    head = "✅ 回答正确！" if correct else f"❌ 回答错误。正确答案：{key}"
    if correct and question.kind != "判断":
        head += f"答案：{key}"
    return f"{head}\n解析：{question.explanation}\n来源：{question.source}"


def _summary(ctx: Context, attempt: Attempt, paper: Paper) -> str:
    board = month_board(ctx.db, attempt.month, attempt.branch_id)
    rank = position(board, attempt.member_id)
    return (
        f"🎉 本月测试完成！答对 {attempt.correct}/{len(paper.question_ids)} 题，得 {attempt.score} 分。\n"
        f"目前在本支部排名第 {rank} 位（已完成 {len(board)} 人）。\n"
        "发送「排行榜」查看榜单，发送「积分」查看积分。"
    )


def _already_done(ctx: Context, attempt: Attempt, paper: Paper) -> str:
    board = month_board(ctx.db, attempt.month, attempt.branch_id)
    rank = position(board, attempt.member_id)
    return (
        f"您已完成{_month_label(attempt.month)}的测试（每月一次），答对 {attempt.correct}/{len(paper.question_ids)} 题，"
        f"得 {attempt.score} 分，目前支部排名第 {rank} 位。下月测试发布后再来吧！"
    )


def hint(ctx: Context, dialog: Dialog) -> str:
    attempt = ctx.db.get(Attempt, dialog.data.get("attempt_id"))
    if attempt is None or attempt.finished_at is not None or attempt.month != ctx.month:
        ctx.end_dialog()
        return "发送「答题」开始本月测试，发送「帮助」查看全部功能。"
    paper = ctx.db.get(Paper, attempt.paper_id)
    assert paper is not None
    return "您正在答题中，请直接回复选项字母作答（其他功能如「积分」「帮助」也可随时使用）。\n\n" + _render(ctx.db, attempt, paper)
