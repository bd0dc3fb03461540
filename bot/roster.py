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

from bot.store import Branch, Member, Role
from bot.tabular import RowError, cell_text, read_table

REQUIRED = ["姓名", "手机号", "支部", "入党日期", "角色"]
ACTIVE = "在册"
TRANSFERRED = "已转出"
ROLES = {r.value: r.value for r in Role} | {"": Role.MEMBER.value, "支部书记": Role.SECRETARY.value, "预备党员": Role.MEMBER.value}


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


@dataclass
class CheckedRoster:
    members: list[MemberData] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def check_file(path: str | Path, today: date) -> CheckedRoster:
    table = read_table(path, REQUIRED)
    result = CheckedRoster()
    seen: dict[str, dict[str, int]] = {"手机号": {}, "微信OpenID": {}, "企业微信账号": {}}
    for number, row in table.rows:
        def text(header: str) -> str:
            return cell_text(row.get(header))

        errors = len(result.errors)

        def fail(header: str, message: str) -> None:
            result.errors.append(table.error(number, header, message))

        name = text("姓名")
        if not name:
            fail("姓名", "姓名不能为空")
        elif len(name) > 50:
            fail("姓名", "姓名过长")
        phone = re.sub(r"[\s-]", "", text("手机号"))
        if not re.fullmatch(r"1\d{10}", phone):
            fail("手机号", f"「{text('手机号')}」不是 11 位手机号")
        branch = text("支部")
        if not branch:
            fail("支部", "支部不能为空")
        joined = _parse_date(text("入党日期"))
        if joined is None:
            fail("入党日期", f"「{text('入党日期')}」不是有效日期，格式应为 YYYY-MM-DD，如 2001-07-01")
        elif joined > today:
            fail("入党日期", f"入党日期 {joined} 晚于今天")
        role = ROLES.get(text("角色"))
        if role is None:
            fail("角色", f"「{text('角色')}」不是有效角色，应为 党员、书记 或 管理员")
        ids = {"微信OpenID": text("微信OpenID"), "企业微信账号": text("企业微信账号")}
        for header, value in [("手机号", phone), *ids.items()]:
            if value and value in seen[header]:
                fail(header, f"与第 {seen[header][value]} 行重复")
            elif value:
                seen[header][value] = number
        if len(result.errors) == errors:
            assert joined is not None and role is not None
            result.members.append(MemberData(number, name, phone, branch, joined, role,
                                             ids["微信OpenID"], ids["企业微信账号"]))
    return result


def _parse_date(text: str) -> date | None:
    match = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text)
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


def import_members(db: Session, members: list[MemberData], file: str, demo: bool = False,
                   progress: Callable[[int, int], None] | None = None, mark_missing: bool = False) -> RosterResult:
    """Upsert by phone. Conflicts with other members' WeChat ids are reported, not written.

    With ``mark_missing`` (a full roster), members not in the file are marked 已转出.
    Demo members are left alone then: a real roster says nothing about them. A demo
    import never marks anyone, so it cannot touch real members."""
    result = RosterResult()
    branches = {b.name: b for b in db.exec(select(Branch)).all()}
    by_phone = {m.phone: m for m in db.exec(select(Member)).all()}
    by_openid = {m.openid: m for m in by_phone.values() if m.openid}
    by_wecom = {m.wecom_userid: m for m in by_phone.values() if m.wecom_userid}
    for data in members:
        for value, index, header in ((data.openid, by_openid, "微信OpenID"), (data.wecom_userid, by_wecom, "企业微信账号")):
            other = index.get(value) if value else None
            if other is not None and other.phone != data.phone:
                result.conflicts.append(f"{file} 第 {data.row} 行「{header}」：已属于名册中的 {other.name}（{other.phone[-4:]}）")
    if result.conflicts:
        return result
    for index, data in enumerate(members, start=1):
        branch = branches.get(data.branch)
        if branch is None:
            branch = Branch(name=data.branch)
            db.add(branch)
            db.flush()
            branches[data.branch] = branch
        values = dict(name=data.name, branch_id=branch.id, joined_on=data.joined_on, role=data.role, status=ACTIVE)
        if data.openid:
            values["openid"] = data.openid
        if data.wecom_userid:
            values["wecom_userid"] = data.wecom_userid
        current = by_phone.get(data.phone)
        if current is None:
            db.add(Member(phone=data.phone, is_demo=demo, **values))
            result.added += 1
        elif any(getattr(current, k) != v for k, v in values.items()):
            if current.status != ACTIVE:
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
            if member.phone not in listed and not member.is_demo and member.status != TRANSFERRED:
                member.status = TRANSFERRED
                db.add(member)
                result.transferred.append(member)
    return result
