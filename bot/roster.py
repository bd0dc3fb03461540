"""Roster files (CSV or XLSX): 姓名, 手机号, 支部, 入党日期, 角色, [微信OpenID], [企业微信账号].

All rows are checked before anything is written; members are matched by phone number,
so re-importing an updated roster updates people instead of duplicating them. A member
missing from a full roster is marked 已转出, never deleted: their quiz answers, points,
deliveries and meeting replies stay attributable, and they come back to 在册 if a later
roster lists them again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlmodel import Session, select

from bot.messages import normalise
from bot.store import Branch, Member, MemberStatus, Role
from bot.store.members import active_members, is_active
from bot.tabular import RowError, cell_text, invisible, read_table, shown

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
    for number, row in table.rows:

        def text(header: str) -> str:
            return cell_text(row.get(header))  # noqa: B023 - called within this iteration only

        errors = len(result.errors)

        def fail(header: str, message: str) -> None:
            result.errors.append(table.error(number, header, message))  # noqa: B023 - called within this iteration only

        # Stored as chat input is read (NFKC, one space): a name with full-width letters or
        # Kangxi radicals must match what the member types in 「绑定 姓名 ……」.
        name = normalise(text("姓名"))
        problem = _free_text_problem("姓名", name, 50)
        if problem:
            fail("姓名", problem)
        # Full-width digits become ASCII; any other digit (Arabic-Indic, circled...) is refused.
        phone = re.sub(r"[\s-]", "", text("手机号").translate(FULL_WIDTH))
        if not re.fullmatch(r"1[0-9]{10}", phone):
            fail("手机号", f"「{shown(row.get('手机号'))}」不是 11 位手机号")
        branch = text("支部")
        problem = _free_text_problem("支部", branch, 100)
        if problem:
            fail("支部", problem)
        joined = _parse_date(text("入党日期"))
        if joined is None:
            fail("入党日期", f"「{shown(row.get('入党日期'))}」不是有效日期，格式应为 YYYY-MM-DD，如 2001-07-01")
        elif joined > today:
            fail("入党日期", f"入党日期 {joined} 晚于今天")
        elif joined < FOUNDED:
            fail("入党日期", f"入党日期 {joined} 早于建党日期 {FOUNDED}")
        role = ROLES.get(text("角色"))
        if role is None:
            fail("角色", f"「{shown(row.get('角色'))}」不是有效角色，应为 党员、书记 或 管理员")
        ids = {"微信OpenID": text("微信OpenID"), "企业微信账号": text("企业微信账号")}
        if ids["微信OpenID"] and not OPENID.fullmatch(ids["微信OpenID"]):
            fail("微信OpenID", f"「{shown(ids['微信OpenID'])}」不是有效的微信 OpenID（字母、数字、- 或 _，最多 64 个）")
        if ids["企业微信账号"] and not WECOM_USERID.fullmatch(ids["企业微信账号"]):
            fail(
                "企业微信账号",
                f"「{shown(ids['企业微信账号'])}」不是有效的企业微信账号"
                "（字母或数字开头，只含字母、数字和 _ - @ .，最多 64 个）",
            )
        for header, value in [("手机号", phone), *ids.items()]:
            if value and value in seen[header]:
                fail(header, f"与第 {seen[header][value]} 行重复")
            elif value:
                seen[header][value] = number
        if len(result.errors) == errors:
            assert joined is not None and role is not None
            result.members.append(
                MemberData(
                    number,
                    name,
                    phone,
                    branch,
                    joined,
                    role,
                    ids["微信OpenID"],
                    ids["企业微信账号"],
                    {h: table.letter(h) for h in OPTIONAL},
                )
            )
    return result


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
        text = f"新增 {self.added} 人，更新 {self.updated} 人，无变化 {self.unchanged} 人"
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
    branches = {b.name: b for b in db.exec(select(Branch)).all()}
    by_phone = {m.phone: m for m in db.exec(select(Member)).all()}
    by_openid = {m.openid: m for m in by_phone.values() if m.openid}
    by_wecom = {m.wecom_userid: m for m in by_phone.values() if m.wecom_userid}
    for data in members:
        for value, index, header in (
            (data.openid, by_openid, "微信OpenID"),
            (data.wecom_userid, by_wecom, "企业微信账号"),
        ):
            other = index.get(value) if value else None
            if other is not None and other.phone != data.phone:
                owner = f"已属于名册中的 {shown(other.name)}（{other.phone[-4:]}）"
                result.conflicts.append(str(RowError(file, data.row, header, data.letters.get(header, ""), owner)))
    if result.conflicts:
        return result
    for index, data in enumerate(members, start=1):
        branch = branches.get(data.branch)
        if branch is None:
            branch = Branch(name=data.branch)
            db.add(branch)
            db.flush()
            branches[data.branch] = branch
        values = dict(
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
        current = by_phone.get(data.phone)
        if current is None:
            db.add(Member(phone=data.phone, is_demo=demo, **values))
            result.added += 1
        elif any(getattr(current, k) != v for k, v in values.items()):
            if not is_active(current):
                result.restored.append(current)
            for key, value in values.items():
                setattr(current, key, value)
            db.add(current)
            result.updated += 1
        else:
            result.unchanged += 1
        if progress:
            progress(index, len(members))
    if mark_missing and not demo:
        listed = {data.phone for data in members}
        for member in by_phone.values():
            if within is not None and member.branch_id not in within:
                continue
            if member.phone not in listed and not member.is_demo and is_active(member):
                member.status = MemberStatus.TRANSFERRED.value
                db.add(member)
                result.transferred.append(member)
    return result


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
