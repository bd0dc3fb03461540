"""题库 in the console (admins): statistics, upload with bad rows (nothing imported) and
good ones, retire/restore (a retired question is never drawn again, even after the bank
is re-imported), the 纠错 queue and the hardest questions."""

from __future__ import annotations

import re

from sqlmodel import select

from bot.store import Answer, Question
from bot.store.models import AuditEntry, QuestionReport
from quizzes.monthly import ensure_paper
from tests.conftest import DATA, load_bank
from tests.support.console import client_for, csrf_of, member_named

HEAD = "题型,题干,选项A,选项B,选项C,选项D,选项E,选项F,答案,解析,分类,来源,难度\n"
GOOD = "判断,党的最高理想和最终目标是实现共产主义。,,,,,,,对,党章总纲明确规定。,党章,《中国共产党章程》总纲,1\n"
BAD = "单选,缺解析的题,甲,乙,,,,,C,,党史,,5\n"


def count(env) -> int:
    with env.store.session() as db:
        return len(db.exec(select(Question)).all())


def post_file(client, text: str, name: str = "题库.csv"):
    return client.post(
        "/console/questions/upload",
        data={"csrf": csrf_of(client, "/console/questions")},
        files={"file": (name, text.encode("utf-8"), "text/csv")},
    )


def test_upload_bad_rows_then_good(env):
    wu = client_for(env, "吴管理")
    before = count(env)
    bad = post_file(wu, HEAD + GOOD + BAD)
    assert bad.status_code == 422 and "未导入任何内容" in bad.text
    for column, message in (
        ("J 列「解析」", "解析不能为空"),
        ("L 列「来源」", "来源不能为空"),
        ("M 列「难度」", "不是有效难度"),
    ):
        assert re.search(f"<td>3</td><td>{column}</td><td>[^<]*{message}", bad.text), column
    assert count(env) == before
    preview = post_file(wu, HEAD + GOOD)
    assert preview.status_code == 200 and "新增 1 题" in preview.text
    assert count(env) == before
    upload_id = re.search(r'name="upload" value="(\d+)"', preview.text).group(1)
    done = wu.post("/console/questions/confirm", data={"csrf": csrf_of(wu), "upload": upload_id})
    assert done.status_code == 200 and "新增 1 题" in done.text
    assert count(env) == before + 1
    with env.store.session() as db:
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "导入题库")).one().actor.startswith("吴管理")


def test_retired_questions_are_never_drawn_and_stay_retired(env):
    wu = client_for(env, "吴管理")
    with env.store.session() as db:
        ids = [q.id for q in db.exec(select(Question).order_by(Question.id)).all()]
    retired = ids[:-3]
    csrf = csrf_of(wu, "/console/questions")
    for qid in retired:
        assert wu.post(f"/console/questions/{qid}/retire", data={"csrf": csrf}).status_code == 200
    load_bank(env.store, DATA / "questions.csv")  # re-importing the file does not bring them back
    branch = member_named(env, "王书记").branch_id
    with env.store.session() as db:
        paper = ensure_paper(db, branch, "2026-11", 10, [], env.clock())
        assert paper is not None and set(paper.question_ids) <= set(ids[-3:])
    listing = wu.get("/console/questions?status=retired").text
    assert listing.count("已停用</span>") == len(retired)
    assert wu.post(f"/console/questions/{retired[0]}/restore", data={"csrf": csrf}).status_code == 200
    with env.store.session() as db:
        assert db.get(Question, retired[0]).active
        assert len(db.exec(select(AuditEntry).where(AuditEntry.action == "停用题目")).all()) == len(retired)


def test_statistics_reports_and_hardest(env):
    li = member_named(env, "李明")
    with env.store.session() as db:
        first, second = db.exec(select(Question).order_by(Question.id).limit(2)).all()
        now = env.clock()  # the app's clock, not the machine's date
        for i in range(4):
            db.add(
                Answer(
                    mode="practice",
                    member_id=li.id,
                    question_id=first.id,
                    chosen=[],
                    is_correct=i == 0,
                    answered_at=now,
                )
            )
            db.add(
                Answer(
                    mode="practice", member_id=li.id, question_id=second.id, chosen=[], is_correct=True, answered_at=now
                )
            )
        db.add(QuestionReport(member_id=li.id, question_id=first.id, text="年份有误", at=now))
    wu = client_for(env, "吴管理")
    page = wu.get(f"/console/questions?q=%23{first.id}").text
    assert re.search(r"<td>4</td>\s*<td>25%</td>", page)
    assert "年份有误" in page and "标记已处理" in page
    hardest = re.search(r'<ol id="hardest">(.*?)</ol>', page, re.S).group(1)
    assert hardest.index(f"#{first.id}") < hardest.index(f"#{second.id}")
    with env.store.session() as db:
        report_id = db.exec(select(QuestionReport)).one().id
    assert wu.post(f"/console/questions/reports/{report_id}/handled", data={"csrf": csrf_of(wu)}).status_code == 200
    with env.store.session() as db:
        item = db.get(QuestionReport, report_id)
        assert item.handled_at is not None and item.handled_by.startswith("吴管理")


def test_secretaries_cannot_touch_the_shared_bank(env):
    wang = client_for(env, "王书记")
    assert wang.get("/console/questions").status_code == 403
    with env.store.session() as db:
        qid = db.exec(select(Question.id)).first()
    assert wang.post(f"/console/questions/{qid}/retire", data={"csrf": csrf_of(wang)}).status_code == 403
    with env.store.session() as db:
        assert db.get(Question, qid).active
