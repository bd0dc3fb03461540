"""导出, 日历与任务 and 审计 in the console."""

from __future__ import annotations

import io

from openpyxl import load_workbook
from sqlmodel import select

from bot.store.models import AuditEntry
from tests.support.console import client_for, member_named


def test_exports_download_real_workbooks_scoped_to_the_branch(env):
    wang = client_for(env, "王书记")
    page = wang.get("/console/exports?month=2026-11").text
    for label in ("测试成绩", "参与情况", "会议考勤", "推送记录"):
        assert label in page
    for kind in ("scores", "participation", "attendance", "deliveries"):
        response = wang.get(f"/console/exports/{kind}.xlsx?month=2026-11")
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
        load_workbook(io.BytesIO(response.content))  # a real workbook
    sheet = load_workbook(io.BytesIO(wang.get("/console/exports/scores.xlsx?month=2026-11").content)).active
    cells = " ".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None)
    assert "李明" in cells and "周芳" not in cells  # own branch only
    two = member_named(env, "孙书记").branch_id
    assert wang.get(f"/console/exports/scores.xlsx?month=2026-11&branch={two}").status_code == 403
    assert wang.get("/console/exports/scores.xlsx?month=2026-13").status_code == 400
    assert wang.get("/console/exports/secrets.xlsx?month=2026-11").status_code == 404
    with env.store.session() as db:
        details = [e.detail for e in db.exec(select(AuditEntry).where(AuditEntry.action == "导出")).all()]
    assert len(details) == 5 and all("第一党支部" in d for d in details)
    wu = client_for(env, "吴管理")
    everyone = load_workbook(io.BytesIO(wu.get("/console/exports/scores.xlsx?month=2026-11").content)).active
    assert "周芳" in " ".join(str(c.value) for row in everyone.iter_rows() for c in row if c.value is not None)


def test_calendar_and_jobs_for_admins_only(env):
    wu = client_for(env, "吴管理")
    page = wu.get("/console/calendar?year=2027")
    assert page.status_code == 200
    assert (
        "<td>春节</td>" in page.text
        and "<td>中秋</td>" in page.text
        and "发布月度测试" in page.text
        and "monthly_quiz" in page.text
    )
    assert wu.get("/console/calendar?year=abc").status_code == 400
    assert client_for(env, "王书记").get("/console/calendar").status_code == 403


def test_audit_log_for_admins_only_with_filters(env):
    wu = client_for(env, "吴管理")
    wang = client_for(env, "王书记")
    assert wang.get("/console/audit").status_code == 403
    wang.get("/console/exports/scores.xlsx?month=2026-11")
    page = wu.get("/console/audit").text
    assert "后台登录" in page and "导出" in page and "王书记" in page
    only = wu.get("/console/audit?action=导出").text
    assert "测试成绩" in only and "后台登录</td>" not in only
