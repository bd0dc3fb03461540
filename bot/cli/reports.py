"""leaderboard, broadcast, export and audit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.text import Text
from sqlmodel import col, select

from bot.audit import cli_actor, record
from bot.cli.common import CliError, _now, _store, console, make_table, progress_bar
from bot.cli.parsing import EXPORT_KINDS, SCOPES, ChineseArgumentParser, Commands, aliases, positive_int
from bot.config import Config
from bot.store import Branch


def cmd_leaderboard(args: argparse.Namespace, config: Config) -> int:
    from quizzes.standings import branch_board, month_board, total_board

    store = _store(config)
    month = args.month or _now(config).strftime("%Y-%m")
    with store.session() as db:
        branch_id = None
        if args.branch:
            branch = db.exec(select(Branch).where(col(Branch.name) == args.branch)).first()
            if branch is None:
                raise CliError(f"没有名为「{args.branch}」的支部")
            branch_id = branch.id
        if args.scope == "branches":
            boards = branch_board(db, month)
            table = make_table("名次", "支部", "人数", "已完成", "参与率", "平均分", title=f"{month} 各支部测试情况")
            for i, b in enumerate(boards, start=1):
                table.add_row(
                    str(i), b.name, str(b.members), str(b.finished), f"{b.participation:.0%}", f"{b.average:.1f}"
                )
            empty = "还没有支部。先导入名册：branchbot members import 名册.xlsx" if not boards else ""
        else:
            rows = month_board(db, month, branch_id) if args.scope == "month" else total_board(db, branch_id)
            title = f"{month} 测试排行榜" if args.scope == "month" else "累计积分排行榜"
            if args.branch:
                title += f"（{args.branch}）"
            table = make_table(
                "名次", "姓名", "支部", "积分", "完成时间" if args.scope == "month" else "达到时间", title=title
            )
            for i, r in enumerate(rows[: args.top], start=1):
                when = r.at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M") if r.at else ""
                table.add_row(str(i), r.name, r.branch, str(r.points), when)
            empty = "" if rows else f"{month} 还没有人完成测试。" if args.scope == "month" else "还没有人获得积分。"
    if empty:
        console.print(empty, highlight=False, markup=False)
        return 0
    console.print(table)
    return 0


# ---------------------------------------------------------------- export, audit


def cmd_broadcast(args: argparse.Namespace, config: Config) -> int:
    """The operator's broadcast: the same campaign a secretary's 通知 creates, after a preview."""
    from bot.outbox.campaigns import reach, send_notice, text_problem

    text = args.text.strip()
    if not text:
        raise CliError("通知内容不能为空")
    if problem := text_problem(text):
        raise CliError(problem)
    store = _store(config)
    # The preview and the write are separate transactions: nothing is held while the
    # operator reads the preview (on SQLite that would stop every writer).
    with store.session() as db:
        if args.branch:
            branch = db.exec(select(Branch).where(col(Branch.name) == args.branch)).first()
            if branch is None:
                raise CliError(f"没有名为「{args.branch}」的支部")
            branches = [branch]
        else:
            branches = list(db.exec(select(Branch)).all())
        ids = [b.id for b in branches if b.id is not None]
        audience = reach(db, ids)
    target = branches[0].name if args.branch else "全部支部"
    console.print(
        f"将发送给{target}：{audience.count} 人（已绑定 {audience.bound} 人）\n——\n{text}\n——",
        highlight=False,
        markup=False,
    )
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("非交互环境请加 --yes 确认发送")
        if input("确认发送？[y/N] ").strip().lower() not in ("y", "yes", "是"):
            console.print("已取消，通知没有发送。")
            return 0
    with store.session() as db:
        campaign, _ = send_notice(
            db, _now(config), text=text, branch_ids=ids, target=target, actor=cli_actor(), title=args.title
        )
    console.print(
        f"已创建通知 #{campaign.id}。服务运行时会自动发送；也可运行 branchbot outbox run 立即发送，branchbot outbox status {campaign.id} 查看结果。"
    )
    return 0


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from bot.exports import KINDS, ExportError, build, parse_month, write_xlsx

    try:
        month = parse_month(args.month) if args.month else _now(config).strftime("%Y-%m")
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    path = Path(args.output)
    if path.suffix.lower() != ".xlsx":
        raise CliError(f"-o「{args.output}」应为 .xlsx 文件")
    if not path.parent.is_dir():
        raise CliError(f"目录 {path.parent} 不存在")
    store = _store(config)
    with progress_bar(f"导出{KINDS[args.kind]} {month}") as update:
        with store.session() as db:
            try:
                export = build(db, args.kind, month, config.tz, args.branch)
            except ExportError as exc:
                raise CliError(str(exc)) from exc
        try:
            write_xlsx(export, path, progress=update)
        except OSError as exc:
            raise CliError(f"无法写入 {path}：{exc.strerror or exc}（文件是否正在 Excel 中打开？）") from exc
    scope = args.branch or "全部支部"
    with store.session() as db:
        record(
            db,
            _now(config),
            cli_actor(),
            "导出",
            f"{KINDS[args.kind]}（{args.kind}）{month}，{scope}，{len(export.rows)} 行 → {path.name}",
        )
    console.print(
        f"已导出{KINDS[args.kind]}（{month}，{scope}）共 {len(export.rows)} 行：{path}", highlight=False, markup=False
    )
    if not export.rows:
        console.print("该月没有可导出的记录，文件中只有表头。", style="yellow", highlight=False)
    return 0


def cmd_audit(args: argparse.Namespace, config: Config) -> int:
    from bot.store.models import AuditEntry

    if args.limit < 1:
        raise CliError("--limit 应为正整数")
    store = _store(config)
    query = select(AuditEntry).order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
    if args.action:
        query = query.where(col(AuditEntry.action) == args.action)
    with store.session() as db:
        entries = db.exec(query.limit(args.limit)).all()
    if not entries:
        console.print("审计日志中没有" + (f"「{args.action}」的" if args.action else "") + "记录。", highlight=False)
        return 0
    table = make_table("时间", "操作人", "操作", "内容", title="审计日志（最新在前）")
    for entry in entries:
        table.add_row(
            entry.at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M:%S"),
            Text(entry.actor),
            Text(entry.action),
            Text(entry.detail),
        )
    console.print(table)
    console.print(f"显示最近 {len(entries)} 条")
    return 0


def register(sub: Commands, common: ChineseArgumentParser) -> None:
    """leaderboard, broadcast, export and audit."""
    p = sub.add_parser("leaderboard", parents=[common], help="排行榜")
    p.add_argument(
        "--scope",
        type=aliases("scope", SCOPES, "本月、总、支部"),
        default="month",
        metavar="本月|总|支部",
        help="本月（默认）、总（累计积分）或 支部（各支部参与率）；也接受 month / total / branches",
    )
    p.add_argument("--month", help="YYYY-MM，默认本月")
    p.add_argument("--branch", help="只看某个支部")
    p.add_argument("--top", type=positive_int, default=20, help="显示前几名（默认 20）")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("broadcast", parents=[common], help="向一个支部或全部支部发通知（经推送队列）")
    p.add_argument("text", help="通知内容")
    p.add_argument("--branch", help="支部名（默认全部支部）")
    p.add_argument("--title", default="支部通知")
    p.add_argument("--yes", action="store_true", help="不再询问，直接发送")
    p.set_defaults(func=cmd_broadcast)

    p = sub.add_parser("export", parents=[common], help="导出 Excel：成绩、参与率、考勤 或 推送")
    p.add_argument(
        "kind",
        metavar="类型",
        type=aliases("kind", EXPORT_KINDS, "成绩、参与率、考勤、推送"),
        help="成绩、参与率、考勤 或 推送（也接受 scores / participation / attendance / deliveries）",
    )
    p.add_argument("--month", help="YYYY-MM，默认本月")
    p.add_argument("-o", "--output", required=True, metavar="FILE.xlsx")
    p.add_argument("--branch", help="只导出某个支部")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("audit", parents=[common], help="审计日志：导入、导出、角色变更、通知等")
    p.add_argument("--limit", type=positive_int, default=50, help="显示条数（默认 50）")
    p.add_argument("--action", help="只看某类操作，如 导出、角色变更、导入名册")
    p.set_defaults(func=cmd_audit)
