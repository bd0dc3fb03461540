"""members: roster import, listing and roles."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from sqlmodel import Session, col, select

from bot.audit import cli_actor, record
from bot.cli.common import CliError, _now, _print_errors, _store, console, err, make_table, progress_bar
from bot.cli.parsing import ChineseArgumentParser, Commands
from bot.config import Config
from bot.store import Branch, Member, Role, Store
from bot.store.members import is_active


def _import_roster(store: Store, path: Path, config: Config, demo: bool = False, mark_missing: bool = False) -> int:
    from bot.roster import check_file, import_members

    checked = check_file(path, _now(config).date())
    if checked.errors:
        _print_errors(checked.errors, path)
        return 1
    if not checked.members:
        err.print(f"[red]{escape(path.name)} 没有任何成员行，未导入。[/red]", highlight=False)
        return 1
    with store.session() as db, progress_bar(f"导入名册 {path.name}") as update:
        result = import_members(db, checked.members, path.name, demo=demo, progress=update, mark_missing=mark_missing)
        if result.conflicts:
            db.rollback()
        else:
            record(db, _now(config), cli_actor(), "导入名册", f"{path.name}：{result.summary(mark_missing)}")
    if result.conflicts:
        for line in result.conflicts:
            err.print(f"[red]✗[/red] {escape(str(line))}", highlight=False)
        err.print(f"[red]{escape(path.name)} 未导入任何成员：请先解决以上冲突。[/red]")
        return 1
    console.print(f"名册导入完成：{result.summary(mark_missing)}。", highlight=False, markup=False)
    if result.transferred or result.restored:
        with store.session() as db:
            branches = {b.id: b.name for b in db.exec(select(Branch)).all()}

        def names(members: list[Member]) -> str:
            shown = "、".join(f"{m.name}（{branches.get(m.branch_id, '')}）" for m in members[:20])
            return shown + (f" 等 {len(members)} 人" if len(members) > 20 else "")

        if result.transferred:
            console.print(
                f"不在本次名册中、已标记为已转出：{names(result.transferred)}。历史记录均保留，重新列入名册即恢复在册；"
                "只导入部分成员时请加 --no-transfer。",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if result.restored:
            console.print(
                f"重新列入名册、已恢复在册：{names(result.restored)}。", highlight=False, markup=False, soft_wrap=True
            )
    return 0


def cmd_members_import(args: argparse.Namespace, config: Config) -> int:
    return _import_roster(_store(config), Path(args.file), config, mark_missing=not args.no_transfer)


def cmd_members_list(args: argparse.Namespace, config: Config) -> int:
    store = _store(config)
    table = make_table("支部", "姓名", "手机号", "角色", "状态", "入党日期", "绑定", title="支部名册")
    for column in (2, 5):  # the phone and the date keep one line; names and branches wrap instead
        table.columns[column].no_wrap = True
    with store.session() as db:
        branches = {b.id: b.name for b in db.exec(select(Branch)).all()}
        query = select(Member).order_by(col(Member.branch_id), col(Member.id))
        members = db.exec(query).all()
    shown = transferred = locked = 0
    now = _now(config)
    for m in members:
        branch = branches.get(m.branch_id, "")
        if args.branch and args.branch != branch:
            continue
        shown += 1
        transferred += not is_active(m)
        name = m.name + (" [演示]" if m.is_demo else "")
        status = m.status if is_active(m) else f"[yellow]{m.status}[/yellow]"
        bound = "、".join((["微信"] if m.openid else []) + ([f"企业微信 {m.wecom_userid}"] if m.wecom_userid else []))
        shown_bound = Text(bound or "未绑定")
        if m.bind_locked_until is not None and m.bind_locked_until > now:  # too many failed guesses at this entry
            shown_bound.append(f" 绑定锁定至 {m.bind_locked_until.astimezone(config.tz):%m-%d %H:%M}", style="red")
            locked += 1
        table.add_row(
            branch, name, m.phone[:3] + "****" + m.phone[-4:], m.role, status, str(m.joined_on or ""), shown_bound
        )
    console.print(table)
    console.print(f"共 {shown} 人" + (f"（其中已转出 {transferred} 人）" if transferred else ""))
    if locked:
        console.print(f"{locked} 人因 1 小时内绑定失败次数过多被暂停绑定，到时自动解除；审计日志中有记录（绑定锁定）。")
    return 0


def _find_member(db: Session, name: str, phone_tail: str | None) -> Member:
    """One member by name; namesakes are told apart by the last four digits of the phone."""
    found = list(db.exec(select(Member).where(col(Member.name) == name).order_by(col(Member.id))).all())
    if not found:
        raise CliError(f"名册中没有「{name}」。用 branchbot members list 查看名册。")
    if phone_tail:
        if not re.fullmatch(r"\d{4}", phone_tail):
            raise CliError(f"--phone「{phone_tail}」应为手机号后四位，如 1234")
        matching = [m for m in found if m.phone.endswith(phone_tail)]
        if not matching:
            tails = "、".join(m.phone[-4:] for m in found)
            raise CliError(f"名册中的「{name}」没有手机尾号为 {phone_tail} 的（现有尾号：{tails}）")
        found = matching
    if len(found) > 1:
        branches = {b.id: b.name for b in db.exec(select(Branch)).all()}
        who = "、".join(f"尾号 {m.phone[-4:]}（{branches.get(m.branch_id, '')}）" for m in found)
        hint = "请用 --phone 加手机号后四位指定。" if not phone_tail else "手机尾号也相同，请先在名册中区分。"
        raise CliError(f"名册中有 {len(found)} 位「{name}」：{who}。{hint}")
    return found[0]


def _change_role(config: Config, name: str, role: str, phone_tail: str | None) -> int:
    from bot.roster import RoleChangeError, change_role

    store = _store(config)
    with store.session() as db:
        member = _find_member(db, name, phone_tail)
        try:
            change = change_role(db, member, role)
        except RoleChangeError as exc:
            raise CliError(str(exc)) from exc
        if not change.changed:
            console.print(f"{change.who}已是{role}，无需变更。", highlight=False, markup=False)
            return 0
        record(db, _now(config), cli_actor(), "角色变更", f"{change.who}：{change.before} → {role}")
    scope = {Role.SECRETARY.value: f"，可管理{change.branch}", Role.ADMIN.value: "，可查看所有支部"}.get(role, "")
    console.print(
        f"已将{change.who}的角色由{change.before}改为{role}{scope}。", highlight=False, markup=False, soft_wrap=True
    )
    if change.other_secretaries:
        console.print(
            f"提示：{change.branch}现有书记还有 {'、'.join(change.other_secretaries)}。",
            style="yellow",
            highlight=False,
            markup=False,
        )
    return 0


def cmd_members_grant(args: argparse.Namespace, config: Config) -> int:
    return _change_role(config, args.name, args.role, args.phone)


def cmd_members_revoke(args: argparse.Namespace, config: Config) -> int:
    return _change_role(config, args.name, Role.MEMBER.value, args.phone)


def register(sub: Commands, common: ChineseArgumentParser) -> None:
    """members import | list | grant | revoke."""
    members = sub.add_parser("members", parents=[common], help="名册").add_subparsers(dest="action", required=True)
    p = members.add_parser("import", parents=[common], help="导入名册（CSV 或 XLSX）；不在名册中的成员标记为已转出")
    p.add_argument("file")
    p.add_argument("--no-transfer", action="store_true", help="只导入部分成员：不在文件中的成员保持不变")
    p.set_defaults(func=cmd_members_import)
    p = members.add_parser("list", parents=[common], help="列出名册")
    p.add_argument("--branch", help="只看某个支部")
    p.set_defaults(func=cmd_members_list)
    roles = [r.value for r in Role]
    p = members.add_parser("grant", parents=[common], help="设置角色：党员、书记（本支部）或 管理员")
    p.add_argument("name", metavar="NAME")
    p.add_argument("role", metavar="ROLE", choices=roles, help="、".join(roles))
    p.add_argument("--phone", metavar="1234", help="重名时用手机号后四位指定")
    p.set_defaults(func=cmd_members_grant)
    p = members.add_parser("revoke", parents=[common], help="撤销书记或管理员角色，恢复为党员")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--phone", metavar="1234", help="重名时用手机号后四位指定")
    p.set_defaults(func=cmd_members_revoke)
