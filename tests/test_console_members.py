"""名册 in the console: filters, uploads with bad rows (nothing imported), preview then
确认导入, a secretary held to their own branch, and admins changing roles (audited)."""

from __future__ import annotations

import io

from openpyxl import Workbook
from sqlmodel import select

from bot.store import Member
from bot.store.models import AuditEntry
from tests.support.console import client_for, csrf_of, member_named

HEAD = "姓名,手机号,支部,入党日期,角色,微信OpenID,企业微信账号\n"
BRANCH_ONE = [  # 第一党支部 as in tests/data/roster.csv, 钱进 left out
    "王书记,13900000001,第一党支部,1999-07-01,书记,,wangshuji",
    "李明,13900000002,第一党支部,2008-06-18,党员,,liming",
    "赵敏,13900000003,第一党支部,2012-11-08,党员,,",
    "张伟,13900001234,第一党支部,2018-05-04,党员,,",
    "刘强,13933332222,第一党支部,2013-12-01,党员,,",
]


def roster(env) -> dict[str, tuple[str, str]]:
    with env.store.session() as db:
        return {m.name + m.phone[-4:]: (m.role, m.status) for m in db.exec(select(Member)).all()}


def upload(client, text: str, name: str = "名册.csv", mark_missing: bool = True):
    data = {"csrf": csrf_of(client, "/console/members")}
    if mark_missing:
        data["mark_missing"] = "1"
    return client.post("/console/members/upload", data=data, files={"file": (name, text.encode("utf-8"), "text/csv")})


def confirm(client, page_html: str):
    import re

    upload_id = re.search(r'name="upload" value="(\d+)"', page_html).group(1)
    return client.post(
        "/console/members/confirm",
        data={"csrf": csrf_of(client, "/console/members"), "upload": upload_id, "mark_missing": "1"},
    )


def test_filters_and_secretary_sees_own_branch_only(env):
    wang = client_for(env, "王书记")
    page = wang.get("/console/members").text
    assert "李明" in page and "周芳" not in page and "孙书记" not in page
    assert "13900000002" not in page  # phones are masked
    assert "未绑定" in wang.get("/console/members?bound=no").text
    assert (
        "赵敏" not in wang.get("/console/members?bound=yes").text
        and "李明" in wang.get("/console/members?bound=yes").text
    )
    assert "赵敏" in wang.get("/console/members?q=赵").text and "李明" not in wang.get("/console/members?q=赵").text
    wu = client_for(env, "吴管理")
    assert "周芳" in wu.get("/console/members").text
    two = member_named(env, "孙书记").branch_id
    only_two = wu.get(f"/console/members?branch={two}").text
    assert "周芳" in only_two and "赵敏" not in only_two
    assert wang.get(f"/console/members?branch={two}").status_code == 403


def test_bad_rows_are_listed_by_row_and_column_and_nothing_is_imported(env):
    before = roster(env)
    wang = client_for(env, "王书记")
    bad = (
        HEAD
        + "\n".join(
            BRANCH_ONE[:3]
            + ["新同志,1390000,第一党支部,2020-13-01,党员,,", "某某,13900009999,第二党支部,2020-01-01,党员,,"]
        )
        + "\n"
    )
    response = upload(wang, bad)
    assert response.status_code == 422
    assert "未导入任何内容" in response.text
    assert "手机号" in response.text and "入党日期" in response.text and ">5<" in response.text
    assert roster(env) == before
    # A row for another branch is refused for a secretary, with its row number.
    response = upload(wang, HEAD + BRANCH_ONE[0] + "\n某某,13900009999,第二党支部,2020-01-01,党员,,\n")
    assert response.status_code == 422 and "不是本支部" in response.text and ">3<" in response.text
    assert roster(env) == before


def test_preview_then_confirm_imports_and_marks_only_own_branch(env):
    wang = client_for(env, "王书记")
    good = HEAD + "\n".join(BRANCH_ONE + ["新同志,13900000099,第一党支部,2020-07-01,党员,,"]) + "\n"
    preview = upload(wang, good)
    assert preview.status_code == 200, preview.text
    assert "新增 1 人：新同志" in preview.text and "标记已转出 1 人：钱进" in preview.text
    assert "新同志0099" not in roster(env)  # a preview imports nothing
    done = confirm(wang, preview.text)
    assert done.status_code == 200 and "新增 1 人" in done.text
    after = roster(env)
    assert after["新同志0099"] == ("党员", "在册")
    assert after["钱进0004"] == ("党员", "已转出")
    assert after["周芳0012"] == ("党员", "在册")  # another branch is never marked by a secretary's roster
    with env.store.session() as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "导入名册")).one()
        assert entry.actor.startswith("王书记") and "后台" in entry.actor
    # The same upload cannot be confirmed twice.
    assert confirm(wang, preview.text).status_code == 400


def test_xlsx_upload(env):
    book = Workbook()
    sheet = book.active
    sheet.append(HEAD.strip().split(","))
    for line in BRANCH_ONE:
        sheet.append(line.split(","))
    sheet.append(["钱进", "13900000004", "第一党支部", "2016-02-29", "党员", "", ""])
    buffer = io.BytesIO()
    book.save(buffer)
    wang = client_for(env, "王书记")
    response = wang.post(
        "/console/members/upload",
        data={"csrf": csrf_of(wang), "mark_missing": "1"},
        files={"file": ("名册.xlsx", buffer.getvalue(), "application/octet-stream")},
    )
    assert response.status_code == 200 and "标记已转出 0 人" in response.text


def test_not_a_table_file_is_refused(env):
    wang = client_for(env, "王书记")
    response = upload(wang, "hello", name="名册.txt")
    assert response.status_code == 400 and "不是 CSV 或 XLSX" in response.text


def test_admin_grants_and_revokes_roles_and_it_is_audited(env):
    wu = client_for(env, "吴管理")
    li = member_named(env, "李明")
    csrf = csrf_of(wu, "/console/members")
    assert wu.post(f"/console/members/{li.id}/role", data={"csrf": csrf, "role": "书记"}).status_code == 200
    assert roster(env)["李明0002"] == ("书记", "在册")
    assert wu.post(f"/console/members/{li.id}/role", data={"csrf": csrf, "role": "党员"}).status_code == 200
    assert roster(env)["李明0002"] == ("党员", "在册")
    with env.store.session() as db:
        lines = [e.detail for e in db.exec(select(AuditEntry).where(AuditEntry.action == "角色变更")).all()]
    assert lines == ["李明（第一党支部，尾号 0002）：党员 → 书记", "李明（第一党支部，尾号 0002）：书记 → 党员"]
    # A secretary cannot change roles, and without CSRF nothing changes.
    wang = client_for(env, "王书记")
    assert wang.post(f"/console/members/{li.id}/role", data={"csrf": csrf_of(wang), "role": "书记"}).status_code == 403
    assert wu.post(f"/console/members/{li.id}/role", data={"role": "书记"}).status_code == 403
    assert roster(env)["李明0002"] == ("党员", "在册")


def test_secretary_roster_cannot_demote_transfer_or_rebind_an_admin_of_the_branch(env):
    from tests.support.console import set_member

    one = member_named(env, "王书记").branch_id
    set_member(env, "吴管理", branch_id=one)  # an admin who belongs to 第一党支部
    before = roster(env)
    wang = client_for(env, "王书记")
    admin_as_member = (
        HEAD
        + "\n".join(
            BRANCH_ONE
            + [
                "钱进,13900000004,第一党支部,2016-02-29,党员,,",
                "吴管理,13900000021,第一党支部,1995-07-01,党员,,wuguanli",
            ]
        )
        + "\n"
    )
    response = upload(wang, admin_as_member)
    assert response.status_code == 422 and "管理员" in response.text
    admin_rebound = (
        HEAD
        + "\n".join(
            BRANCH_ONE
            + [
                "钱进,13900000004,第一党支部,2016-02-29,党员,,",
                "吴管理,13900000021,第一党支部,1995-07-01,管理员,,wangshuji2",
            ]
        )
        + "\n"
    )
    assert upload(wang, admin_rebound).status_code == 422
    admin_left_out = HEAD + "\n".join(BRANCH_ONE + ["钱进,13900000004,第一党支部,2016-02-29,党员,,"]) + "\n"
    response = upload(wang, admin_left_out)
    assert response.status_code == 422 and "吴管理" in response.text
    assert roster(env) == before
    assert client_for(env, "吴管理").get("/console/audit").status_code == 200
