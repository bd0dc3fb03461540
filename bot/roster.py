"""Roster files (CSV or XLSX): 姓名, 手机号, 支部, 入党日期, 角色, [微信OpenID], [企业微信账号].

All rows are checked before anything is written; members are matched by phone number,
so re-importing an updated roster updates people instead of duplicating them. A member
missing from a full roster is marked 已转出, never deleted: their quiz answers, points,
deliveries and meeting replies stay attributable, and they come back to 在册 if a later
roster lists them again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from bot.imports import Cells, Counts, check_rows, upsert
from bot.messages import normalise
from bot.store import Branch, Member, MemberStatus, Role
from bot.store.members import active_members, is_active
from bot.tabular import RowError, invisible, read_table, shown

REQUIRED = ["姓名", "手机号", "支部", "入党日期", "角色"]
OPTIONAL = ["微信OpenID", "企业微信账号"]
FOUNDED = date(1921, 7, 1)  # the Party's founding day; Excel's zero date (1899-12-30) falls before it
FULL_WIDTH = str.maketrans("０１２３４５６７８９－", "0123456789-")  # what a Chinese IME types
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
WECOM_USERID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # WeCom's rule for a member's account
ROLES = {r.value: r.value for r in Role} | {
    "": Role.MEMBER.value,
    "支部书记": Role.SECRETARY.value,
    "预备党员": Role.MEMBER.value,
}


@dataclass
class MemberData:
    row: int
    name: str
    phone: str
    branch: str
    joined_on: date
    role: str
    openid: str
    wecom_userid: str
    letters: dict[str, str] = field(default_factory=dict)  # header → column letter, for later errors


@dataclass
class CheckedRoster:
    members: list[MemberData] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def check_file(path: str | Path, today: date) -> CheckedRoster:
    table = read_table(path, REQUIRED, OPTIONAL)
    result = CheckedRoster()
    seen: dict[str, dict[str, int]] = {"手机号": {}, "微信OpenID": {}, "企业微信账号": {}}

    def check(cells: Cells) -> MemberData | None:
        member = _check_row(cells, today, {h: table.letter(h) for h in OPTIONAL})
        phone = member.phone if member else _phone(cells.text("手机号"))
        for header, value in [
            ("手机号", phone),
            ("微信OpenID", cells.text("微信OpenID")),
            ("企业微信账号", cells.text("企业微信账号")),
        ]:
            if value and value in seen[header]:
                cells.fail(header, f"与第 {seen[header][value]} 行重复")
            elif value:
                seen[header][value] = cells.number
        return member

    result.members = check_rows(table, check, result.errors)
    return result


def _phone(text: str) -> str:
    """Full-width digits become ASCII, spaces and dashes go; any other digit (Arabic-Indic,
    circled...) stays, to be refused."""
    return re.sub(r"[\s-]", "", text.translate(FULL_WIDTH))


def _check_row(cells: Cells, today: date, letters: dict[str, str]) -> MemberData | None:
    """One roster row → a member, each problem reported through ``cells``."""
    before = len(cells.errors)
    # Stored as chat input is read (NFKC, one space): a name with full-width letters or
    # Kangxi radicals must match what the member types in 「绑定 姓名 ……」.
    name = normalise(cells.text("姓名"))
    if problem := _free_text_problem("姓名", name, 50):
        cells.fail("姓名", problem)
    phone = _phone(cells.text("手机号"))
    if not re.fullmatch(r"1[0-9]{10}", phone):
        cells.fail("手机号", f"「{shown(cells.value('手机号'))}」不是 11 位手机号")
    branch = cells.text("支部")
    if problem := _free_text_problem("支部", branch, 100):
        cells.fail("支部", problem)
    joined = _joined_on(cells, today)
    role = ROLES.get(cells.text("角色"))
    if role is None:
        cells.fail("角色", f"「{shown(cells.value('角色'))}」不是有效角色，应为 党员、书记 或 管理员")
    openid, wecom_userid = _account_ids(cells)
    if len(cells.errors) > before or joined is None or role is None:
        return None
    return MemberData(cells.number, name, phone, branch, joined, role, openid, wecom_userid, letters)


def _joined_on(cells: Cells, today: date) -> date | None:
    joined = _parse_date(cells.text("入党日期"))
    if joined is None:
        cells.fail("入党日期", f"「{shown(cells.value('入党日期'))}」不是有效日期，格式应为 YYYY-MM-DD，如 2001-07-01")
    elif joined > today:
        cells.fail("入党日期", f"入党日期 {joined} 晚于今天")
    elif joined < FOUNDED:
        cells.fail("入党日期", f"入党日期 {joined} 早于建党日期 {FOUNDED}")
    else:
        return joined
    return None


def _account_ids(cells: Cells) -> tuple[str, str]:
    """(微信OpenID, 企业微信账号) as given, each checked against its platform's rule."""
    openid, wecom_userid = cells.text("微信OpenID"), cells.text("企业微信账号")
    if openid and not OPENID.fullmatch(openid):
        cells.fail("微信OpenID", f"「{shown(openid)}」不是有效的微信 OpenID（字母、数字、- 或 _，最多 64 个）")
    if wecom_userid and not WECOM_USERID.fullmatch(wecom_userid):
        cells.fail(
            "企业微信账号",
            f"「{shown(wecom_userid)}」不是有效的企业微信账号（字母或数字开头，只含字母、数字和 _ - @ .，最多 64 个）",
        )
    return openid, wecom_userid


def _free_text_problem(header: str, text: str, limit: int) -> str | None:
    """Why a name or branch cannot be stored: it is shown in chat, in the terminal and in
    Excel exports, where a leading = + - @ makes a formula."""
    if not text:
        return f"{header}不能为空"
    if len(text) > limit:
        return f"{header}过长（{len(text)} 字，最多 {limit} 字）"
    if text[0] in "=+-@":
        return f"{header}不能以 {text[0]} 开头（电子表格会把它当作公式）"
    hidden = next((c for c in text if invisible(c)), None)
    if hidden is not None:
        return f"{header}含有不可见字符或控制字符（U+{ord(hidden):04X}）"
    return None


def _parse_date(text: str) -> date | None:
    match = re.fullmatch(r"([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?", text.translate(FULL_WIDTH))
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


@dataclass
class RosterResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    transferred: list[Member] = field(default_factory=list)  # marked 已转出 by this import
    restored: list[Member] = field(default_factory=list)  # back to 在册 (counted in updated)
    conflicts: list[str] = field(default_factory=list)

    def summary(self, marked: bool) -> str:
        text = Counts(self.added, self.updated, self.unchanged).summary("人")
        return text + (f"，标记已转出 {len(self.transferred)} 人" if marked else "")


def import_members(
    db: Session,
    members: list[MemberData],
    file: str,
    demo: bool = False,
    progress: Callable[[int, int], None] | None = None,
    mark_missing: bool = False,
    within: set[int] | None = None,
) -> RosterResult:
    """Upsert by phone. Conflicts with other members' WeChat ids are reported, not written.

    With ``mark_missing`` (a full roster), members not in the file are marked 已转出 —
    only those in the branches ``within``, when given (a secretary's own branch's roster).
    Demo members are left alone then: a real roster says nothing about them. A demo
    import never marks anyone, so it cannot touch real members."""
    result = RosterResult()
    by_phone = {m.phone: m for m in db.exec(select(Member)).all()}
    result.conflicts = _conflicts(members, by_phone.values(), file)
    if result.conflicts:
        return result
    branches = {b.name: b for b in db.exec(select(Branch)).all()}
    listed = list(by_phone.values())

    def restore(member: Member) -> None:
        if not is_active(member):
            result.restored.append(member)

    counts = upsert(
        db,
        members,
        by_phone,
        key=lambda data: data.phone,
        values=lambda data: _member_values(db, data, branches),
        create=lambda data, values: Member(phone=data.phone, is_demo=demo, **values),
        progress=progress,
        before_update=restore,
    )
    result.added, result.updated, result.unchanged = counts.added, counts.updated, counts.unchanged
    if mark_missing and not demo:
        result.transferred = _mark_transferred(db, listed, {data.phone for data in members}, within)
    return result


def _conflicts(members: list[MemberData], stored: Iterable[Member], file: str) -> list[str]:
    """Rows whose WeChat OpenID or WeCom account already belongs to another member."""
    by_openid = {m.openid: m for m in stored if m.openid}
    by_wecom = {m.wecom_userid: m for m in stored if m.wecom_userid}
    found = []
    for data in members:
        for value, index, header in (
            (data.openid, by_openid, "微信OpenID"),
            (data.wecom_userid, by_wecom, "企业微信账号"),
        ):
            other = index.get(value) if value else None
            if other is not None and other.phone != data.phone:
                owner = f"已属于名册中的 {shown(other.name)}（{other.phone[-4:]}）"
                found.append(str(RowError(file, data.row, header, data.letters.get(header, ""), owner)))
    return found


def _member_values(db: Session, data: MemberData, branches: dict[str, Branch]) -> dict[str, Any]:
    """What a roster row sets on its member (the branch created when new). An account id
    left empty in the file keeps the one the member has."""
    branch = branches.get(data.branch)
    if branch is None:
        branch = Branch(name=data.branch)
        db.add(branch)
        db.flush()
        branches[data.branch] = branch
    values: dict[str, Any] = dict(
        name=data.name,
        branch_id=branch.id,
        joined_on=data.joined_on,
        role=data.role,
        status=MemberStatus.ACTIVE.value,
    )
    if data.openid:
        values["openid"] = data.openid
    if data.wecom_userid:
        values["wecom_userid"] = data.wecom_userid
    return values


def _mark_transferred(db: Session, stored: list[Member], listed: set[str], within: set[int] | None) -> list[Member]:
    """Mark 已转出 the active, real members (of the branches ``within``) a full roster leaves out."""
    marked = []
    for member in stored:
        if within is not None and member.branch_id not in within:
            continue
        if member.phone not in listed and not member.is_demo and is_active(member):
            member.status = MemberStatus.TRANSFERRED.value
            db.add(member)
            marked.append(member)
    return marked


class RoleChangeError(Exception):
    """A role change that may not be made; the message says why."""


@dataclass
class RoleChange:
    who: str  # 「姓名（支部，尾号 1234）」
    branch: str
    before: str
    after: str
    other_secretaries: list[str]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def change_role(db: Session, member: Member, role: str) -> RoleChange:
    """Grant or revoke 书记 / 管理员 (CLI and console alike). A member marked 已转出 can only
    be made a plain 党员. The caller writes the audit line."""
    if role not in ROLES.values():
        raise RoleChangeError(f"「{role}」不是有效角色，应为 党员、书记 或 管理员")
    branch = db.get(Branch, member.branch_id)
    branch_name = branch.name if branch else ""
    who = f"{member.name}（{branch_name}，尾号 {member.phone[-4:]}）"
    if not is_active(member) and role != Role.MEMBER.value:
        raise RoleChangeError(f"{who}已转出，不能授予{role}。如已转回，请先在名册中列入并导入。")
    before = member.role
    others: list[str] = []
    if role == Role.SECRETARY.value and before != role:
        others = [
            m.name
            for m in db.exec(
                active_members(
                    Member.branch_id == member.branch_id, Member.role == Role.SECRETARY.value, Member.id != member.id
                )
            ).all()
        ]
    if before != role:
        member.role = role
        db.add(member)
    return RoleChange(who, branch_name, before, role, others)
