"""/console/members 名册: search and filter; upload a roster (CSV or XLSX) → the CLI's
checks → an error table with nothing imported, or a preview → 确认导入; admins grant
and revoke roles.

A secretary's upload is their own branch's roster: every row must name their branch, a
phone already on another branch is refused, and 已转出 marking stays within the branch.
The preview is the real import run inside a savepoint and rolled back, so it cannot
disagree with what 确认导入 then does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_
from sqlmodel import col, select
from starlette.responses import Response
from starlette.routing import Route

from bot.audit import record
from bot.console.uploads import Problem, as_file, check_upload, keep, kept, take_file
from bot.console.web import Console, Page, Refused, redirect, small_int
from bot.imports import dry_run
from bot.roster import MemberData, RoleChangeError, change_role, check_file, import_members
from bot.store import Branch, Member, MemberStatus, Role
from bot.store.members import is_active

SHOWN = 300
ROLES = [r.value for r in Role]


@dataclass
class Preview:
    added: list[str]
    updated: int
    unchanged: int
    transferred: list[str]
    restored: list[str]


@dataclass
class Checked:
    problems: list[Problem] = field(default_factory=list)
    preview: Preview | None = None
    count: int = 0


def _branches(page: Page) -> dict[int, str]:
    return {b.id: b.name for b in page.db.exec(select(Branch).order_by(col(Branch.id))).all() if b.id is not None}


def view(page: Page) -> Response:
    branches = _branches(page)
    query = select(Member).order_by(col(Member.branch_id), col(Member.id))
    if page.viewer.scope is not None:
        query = query.where(col(Member.branch_id).in_(page.viewer.scope))
    wanted_branch = page.arg("branch")
    if wanted_branch.isdigit():
        wanted = small_int(wanted_branch)
        page.viewer.require_branch(wanted)
        query = query.where(col(Member.branch_id) == (wanted if wanted is not None else -1))
    if text := page.arg("q"):
        query = query.where(or_(col(Member.name).contains(text), col(Member.phone).endswith(text)))
    if (role := page.arg("role")) in ROLES:
        query = query.where(col(Member.role) == role)
    if (status := page.arg("status")) in (MemberStatus.ACTIVE.value, MemberStatus.TRANSFERRED.value):
        query = query.where(col(Member.status) == status)
    bound = page.arg("bound")
    if bound == "yes":
        query = query.where(or_(col(Member.openid).is_not(None), col(Member.wecom_userid).is_not(None)))
    elif bound == "no":
        query = query.where(col(Member.openid).is_(None), col(Member.wecom_userid).is_(None))
    members = page.db.exec(query.limit(SHOWN + 1)).all()
    return page.render(
        "members.html",
        title="名册",
        members=members[:SHOWN],
        more=len(members) > SHOWN,
        branches=branches,
        roles=ROLES,
        filters=dict(page.query),
        done=page.arg("done"),
    )


def _check(page: Page, name: str, data: bytes, mark_missing: bool) -> Checked:
    """The CLI's checks, the secretary's scope, then the import inside a savepoint (rolled back)."""
    out = Checked()
    checked, out.problems = check_upload(name, data, lambda path: check_file(path, page.now.date()))
    if checked is None:
        return out
    if not out.problems and not checked.members:
        out.problems.append(Problem("", "", f"{name} 没有任何成员行。"))
    if not out.problems and page.viewer.scope is not None:
        out.problems += _beyond_secretary(page, checked.members, mark_missing)
    if out.problems:
        return out
    within = None if page.viewer.scope is None else set(page.viewer.scope)

    def preview() -> None:
        known = {m.phone for m in page.db.exec(select(Member)).all()}
        result = import_members(page.db, checked.members, name, mark_missing=mark_missing, within=within)
        out.preview = Preview(
            [m.name for m in checked.members if m.phone not in known],
            result.updated,
            result.unchanged,
            [m.name for m in result.transferred],
            [m.name for m in result.restored],
        )
        out.problems += [Problem("", "", line) for line in result.conflicts]

    dry_run(page.db, preview)
    out.count = len(checked.members)
    return out


def _beyond_secretary(page: Page, members: list[MemberData], mark_missing: bool) -> list[Problem]:
    """What a secretary's roster may not do: name another branch, take a member of one, or
    touch an admin of their own (demote, rebind to another WeChat/WeCom account — a
    console login —, or mark 已转出)."""
    problems: list[Problem] = []
    own = page.viewer.branch.name
    elsewhere = {
        m.phone: m for m in page.db.exec(select(Member).where(Member.branch_id != page.viewer.member.branch_id)).all()
    }
    admins = {
        m.phone: m
        for m in page.db.exec(
            select(Member).where(Member.branch_id == page.viewer.member.branch_id, Member.role == Role.ADMIN.value)
        ).all()
    }
    for row in members:
        admin = admins.get(row.phone)
        if row.branch != own:
            problems.append(Problem(row.row, "支部", f"「{row.branch}」不是本支部：书记只能导入{own}的名册"))
        elif row.phone in elsewhere:
            problems.append(Problem(row.row, "手机号", "该手机号属于其他支部的成员，转入本支部请联系管理员"))
        elif admin is None and row.role == Role.ADMIN.value:
            problems.append(Problem(row.row, "角色", "书记不能在名册中设置管理员，请联系管理员"))
        elif admin is not None and (
            row.role != Role.ADMIN.value
            or (row.openid or admin.openid) != admin.openid
            or (row.wecom_userid or admin.wecom_userid) != admin.wecom_userid
        ):
            problems.append(Problem(row.row, "角色", "该成员是管理员：书记不能变更其角色或微信账号，请联系管理员"))
    if mark_missing:
        listed = {row.phone for row in members}
        for admin in admins.values():
            if admin.phone not in listed and is_active(admin) and not admin.is_demo:
                problems.append(
                    Problem(
                        "",
                        "",
                        f"管理员{admin.name}不在文件中：书记不能将管理员标记为已转出，请在文件中保留该行，或联系管理员",
                    )
                )
    return problems


def upload(page: Page) -> Response:
    name, data = take_file(page)
    mark_missing = page.form.get("mark_missing") == "1"
    checked = _check(page, name, data, mark_missing)
    if checked.problems:
        return page.render("members_upload.html", title="名册导入", status=422, name=name, checked=checked)
    row = keep(page, "roster", name, data)
    return page.render(
        "members_upload.html", title="名册导入", name=name, checked=checked, upload=row.id, mark_missing=mark_missing
    )


def confirm(page: Page) -> Response:
    row = kept(page, "roster")
    mark_missing = page.form.get("mark_missing") == "1"
    checked = _check(page, row.filename, row.content, mark_missing)
    if checked.problems:
        return page.render("members_upload.html", title="名册导入", status=422, name=row.filename, checked=checked)
    with as_file(row.filename, row.content) as path:
        members = check_file(path, page.now.date()).members
    within = None if page.viewer.scope is None else set(page.viewer.scope)
    result = import_members(page.db, members, row.filename, mark_missing=mark_missing, within=within)
    if result.conflicts:  # cannot happen after the same check in this transaction, but never import half
        raise Refused("名册与现有记录冲突，未导入：" + "；".join(result.conflicts[:5]), 409)
    record(
        page.db,
        page.now,
        page.viewer.actor,
        "导入名册",
        f"{row.filename}：{result.summary(mark_missing)}" + (f"（{page.viewer.branch.name}）" if within else ""),
    )
    page.db.delete(row)
    return page.render(
        "members_done.html",
        title="名册导入",
        name=row.filename,
        summary=result.summary(mark_missing),
        transferred=[m.name for m in result.transferred],
        restored=[m.name for m in result.restored],
    )


def set_role(page: Page) -> Response:
    member = page.db.get(Member, page.int_path("member_id"))
    if member is None:
        raise Refused("名册中没有这位同志。", 404)
    role = page.form.get("role", "")
    if member.id == page.viewer.member.id and role != Role.ADMIN.value:
        raise Refused("不能撤销自己的管理员角色，请由其他管理员操作。", 400)
    try:
        change = change_role(page.db, member, role)
    except RoleChangeError as exc:
        raise Refused(str(exc), 400) from exc
    if change.changed:
        record(page.db, page.now, page.viewer.actor, "角色变更", f"{change.who}：{change.before} → {change.after}")
    return redirect("/console/members", done="role", q=member.name)


def routes(console: Console) -> list[Route]:
    return [
        console.route("/console/members", view),
        console.route("/console/members/upload", upload, methods=("POST",)),
        console.route("/console/members/confirm", confirm, methods=("POST",)),
        console.route("/console/members/{member_id}/role", set_role, methods=("POST",), admin=True),
    ]
