"""/console/questions 题库 (admins: the bank is shared by every branch): browse, search
and filter with each question's correct rate and times asked; upload a question file →
the CLI's checks → preview → 确认导入; retire and restore (a retired question is never
drawn again, and its history stays); the 纠错 queue; the hardest questions."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_
from sqlmodel import col, select
from starlette.responses import Response
from starlette.routing import Route

from bot.audit import record
from bot.console.uploads import Problem, check_upload, keep, kept, take_file
from bot.console.web import Console, Page, Refused, redirect, small_int
from bot.imports import dry_run
from bot.store import Member, Question
from bot.store.models import QuestionReport
from handlers.questions import MIN_ANSWERS, answer_stats, hardest_questions
from quizzes.bank import QuestionData, check_file, import_questions

PER_PAGE = 30
KINDS = ["单选", "多选", "判断"]


@dataclass
class Checked:
    problems: list[Problem] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    updated: int = 0
    unchanged: int = 0
    count: int = 0


def _letter(index: int) -> str:
    return "ABCDEF"[index] if index < 6 else str(index + 1)


def view(page: Page) -> Response:
    query = select(Question)
    text = page.arg("q")
    if small_int(text.lstrip("#")) is not None:
        query = query.where(col(Question.id) == int(text.lstrip("#")))
    elif text:
        query = query.where(or_(col(Question.stem).contains(text), col(Question.source).contains(text)))
    if category := page.arg("category"):
        query = query.where(col(Question.category) == category)
    if (kind := page.arg("kind")) in KINDS:
        query = query.where(col(Question.kind) == kind)
    status = page.arg("status")
    if status == "active":
        query = query.where(col(Question.active) == True)
    elif status == "retired":
        query = query.where(col(Question.active) == False)
    number = int(page.arg("page")) if page.arg("page").isdigit() and len(page.arg("page")) < 6 else 1
    number = max(number, 1)
    questions = page.db.exec(query.order_by(col(Question.id)).offset((number - 1) * PER_PAGE).limit(PER_PAGE + 1)).all()
    stats = answer_stats(page.db, [q.id for q in questions if q.id is not None])
    categories = sorted(set(page.db.exec(select(col(Question.category))).all()))
    reports = page.db.exec(
        select(QuestionReport, col(Member.name), col(Question.stem))
        .join(Member, col(Member.id) == col(QuestionReport.member_id))
        .join(Question, col(Question.id) == col(QuestionReport.question_id))
        .order_by(col(QuestionReport.handled_at).is_not(None), col(QuestionReport.id).desc())
        .limit(50)
    ).all()
    hardest = [
        (page.db.get(Question, qid), count, rate, seconds) for qid, count, rate, seconds in hardest_questions(page.db)
    ]
    return page.render(
        "questions.html",
        title="题库",
        questions=questions[:PER_PAGE],
        more=len(questions) > PER_PAGE,
        page_no=number,
        stats=stats,
        categories=categories,
        kinds=KINDS,
        filters=dict(page.query),
        reports=reports,
        hardest=hardest,
        min_answers=MIN_ANSWERS,
        letter=_letter,
        done=page.arg("done"),
    )


def _check(page: Page, name: str, data: bytes) -> tuple[Checked, list[QuestionData]]:
    """The CLI's checks, then the import inside a savepoint (rolled back) as the preview."""
    out = Checked()
    checked, out.problems = check_upload(name, data, check_file)
    if checked is None:
        return out, []
    if not out.problems and not checked.questions:
        out.problems.append(Problem("", "", f"{name} 没有任何题目行。"))
    if out.problems:
        return out, []

    def preview() -> None:
        known = set(page.db.exec(select(col(Question.stem_key))).all())
        result = import_questions(page.db, checked.questions)
        out.added = [q.stem[:40] for q in checked.questions if q.key not in known]
        out.updated, out.unchanged = result.updated, result.unchanged

    dry_run(page.db, preview)
    out.count = len(checked.questions)
    return out, checked.questions


def upload(page: Page) -> Response:
    name, data = take_file(page)
    checked, _ = _check(page, name, data)
    if checked.problems:
        return page.render("questions_upload.html", title="题库导入", status=422, name=name, checked=checked)
    row = keep(page, "questions", name, data)
    return page.render("questions_upload.html", title="题库导入", name=name, checked=checked, upload=row.id)


def confirm(page: Page) -> Response:
    row = kept(page, "questions")
    checked, questions = _check(page, row.filename, row.content)
    if checked.problems:
        return page.render("questions_upload.html", title="题库导入", status=422, name=row.filename, checked=checked)
    result = import_questions(page.db, questions)
    summary = result.summary("题")
    record(page.db, page.now, page.viewer.actor, "导入题库", f"{row.filename}：{summary}")
    page.db.delete(row)
    return page.render("questions_upload.html", title="题库导入", name=row.filename, checked=checked, summary=summary)


def _question(page: Page) -> Question:
    question = page.db.get(Question, page.int_path("question_id"))
    if question is None:
        raise Refused("题库中没有这道题。", 404)
    return question


def _set_active(page: Page, active: bool) -> Response:
    question = _question(page)
    if question.active != active:
        question.active = active
        page.db.add(question)
        record(
            page.db,
            page.now,
            page.viewer.actor,
            "恢复题目" if active else "停用题目",
            f"#{question.id} {question.stem[:60]}",
        )
    return redirect("/console/questions", q=f"#{question.id}", done="restored" if active else "retired")


def retire(page: Page) -> Response:
    return _set_active(page, False)


def restore(page: Page) -> Response:
    return _set_active(page, True)


def handled(page: Page) -> Response:
    item = page.db.get(QuestionReport, page.int_path("report_id"))
    if item is None:
        raise Refused("没有这条纠错反馈。", 404)
    if item.handled_at is None:
        item.handled_at, item.handled_by = page.now, page.viewer.actor[:100]
        page.db.add(item)
        record(
            page.db,
            page.now,
            page.viewer.actor,
            "纠错已处理",
            f"反馈 #{item.id}（题目 #{item.question_id}）：{item.text[:100]}",
        )
    return redirect("/console/questions", done="handled")


def routes(console: Console) -> list[Route]:
    return [
        console.route("/console/questions", view, admin=True),
        console.route("/console/questions/upload", upload, methods=("POST",), admin=True),
        console.route("/console/questions/confirm", confirm, methods=("POST",), admin=True),
        console.route("/console/questions/{question_id}/retire", retire, methods=("POST",), admin=True),
        console.route("/console/questions/{question_id}/restore", restore, methods=("POST",), admin=True),
        console.route("/console/questions/reports/{report_id}/handled", handled, methods=("POST",), admin=True),
    ]
