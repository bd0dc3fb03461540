"""The ``branchbot`` command. Every subcommand takes ``--config PATH``."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table as RichTable
from rich.text import Text
from sqlmodel import Session, select

from bot.audit import cli_actor, record
from bot.config import Config, ConfigError, load_config, masked
from bot.errcodes import ERRCODE_TEXT
from bot.store import Branch, Member, Role, Store, create_store
from bot.store.members import active_members, is_active
from bot.store.migrate import SchemaMismatch
from bot.tabular import FileProblem

console = Console()
err = Console(stderr=True, soft_wrap=True)
DEMO_ROSTER = Path(__file__).parent / "demo" / "roster.csv"


class CliError(Exception):
    """An error for the operator; printed without a traceback."""


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console, transient=False) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _store(config: Config, must_exist: bool = True) -> Store:
    store = create_store(config.database.url)
    if must_exist and not store.is_initialised():
        raise CliError("数据库尚未初始化，请先运行：branchbot init")
    return store


def _now(config: Config) -> datetime:
    return datetime.now(timezone.utc).astimezone(config.tz)


# ---------------------------------------------------------------- init / serve


def cmd_init(args: argparse.Namespace, config: Config) -> int:
    from quizzes import bank

    from bot.store.migrate import upgrade

    store = _store(config, must_exist=False)
    before, after = upgrade(store)
    state = "已创建" if before is None else ("已升级" if before != after else "已是最新")
    console.print(f"数据库{state}（版本 {after}）：{config.database.url}")
    for path in bank.bundled_files():
        _import_questions(store, path, config)
    if args.demo:
        console.print("[yellow]导入演示名册（姓名、手机号均为虚构，仅供体验）[/yellow]")
        _import_roster(store, DEMO_ROSTER, config, demo=True)
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.store.migrate import check

    store = _store(config)
    check(store)
    workers = config.server.workers if args.workers is None else args.workers
    if workers < 1:
        raise CliError("--workers 至少为 1")
    base = f"http://{config.server.host}:{config.server.port}"
    console.print(f"BranchBot 正在监听 {base}  （公众号回调 {base}/wechat，企业微信回调 {base}/wecom）"
                  + (f"，{workers} 个进程" if workers > 1 else ""))
    if config.simulator.enabled:
        console.print(f"[green]聊天模拟器：{base}/[/green]  选择一位名册成员即可开始对话")
    options = dict(host=config.server.host, port=config.server.port, log_level="info", access_log=False)
    if workers == 1:
        uvicorn.run(create_app(config, store, background=True), **options)
        return 0
    # Each worker process builds its own app from the same config file (and the same
    # BRANCHBOT__ overrides, which it inherits); they share the database like instances.
    store.dispose()
    os.environ["BRANCHBOT_CONFIG"] = str(Path(args.config or os.environ.get("BRANCHBOT_CONFIG", "config.toml")).resolve())
    os.environ["BRANCHBOT__SERVER__WORKERS"] = str(workers)  # each worker takes its share of the send rate limits
    uvicorn.run("bot.app:app_from_environment", factory=True, workers=workers, **options)
    return 0


# ---------------------------------------------------------------- chat


def cmd_chat(args: argparse.Namespace, config: Config) -> int:
    from bot.engine import Engine
    from bot.messages import Inbound
    from handlers import build_registry

    store = _store(config)
    with store.session() as db:
        found = db.exec(select(Member).where(Member.name == args.as_name)).all()
    if not found:
        raise CliError(f"名册中没有「{args.as_name}」。用 branchbot members list 查看名册。")
    if len(found) > 1:
        tails = "、".join(m.phone[-4:] for m in found)
        raise CliError(f"名册中有 {len(found)} 位「{args.as_name}」（手机尾号 {tails}），请在名册中区分后再试。")
    member = found[0]
    engine = Engine(store, config, build_registry())
    console.print(f"以「{member.name}」的身份对话（经过与微信消息相同的路由）。输入「退出」或按 Ctrl-D 结束。")
    lines = sys.stdin
    while True:
        if sys.stdin.isatty():
            console.print("[bold]> [/bold]", end="")
        line = lines.readline()
        if not line or line.strip() in ("退出", "exit", "quit"):
            return 0
        if not line.strip():
            continue
        inbound = Inbound(channel="cli", sender=str(member.id), kind="text", key=f"cli:{uuid.uuid4()}",
                          created_at=datetime.now(timezone.utc), text=line.strip())
        console.print(engine.handle(inbound) or "（无回复）", highlight=False, markup=False, soft_wrap=True)
        console.print()


# ---------------------------------------------------------------- members


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
            console.print(f"不在本次名册中、已标记为已转出：{names(result.transferred)}。历史记录均保留，重新列入名册即恢复在册；"
                          "只导入部分成员时请加 --no-transfer。", highlight=False, markup=False, soft_wrap=True)
        if result.restored:
            console.print(f"重新列入名册、已恢复在册：{names(result.restored)}。", highlight=False, markup=False, soft_wrap=True)
    return 0


def cmd_members_import(args: argparse.Namespace, config: Config) -> int:
    return _import_roster(_store(config), Path(args.file), config, mark_missing=not args.no_transfer)


def cmd_members_list(args: argparse.Namespace, config: Config) -> int:
    store = _store(config)
    table = RichTable("支部", "姓名", "手机号", "角色", "状态", "入党日期", "微信", "企业微信", title="支部名册")
    with store.session() as db:
        branches = {b.id: b.name for b in db.exec(select(Branch)).all()}
        query = select(Member).order_by(Member.branch_id, Member.id)
        members = db.exec(query).all()
    shown = transferred = 0
    for m in members:
        branch = branches.get(m.branch_id, "")
        if args.branch and args.branch != branch:
            continue
        shown += 1
        transferred += not is_active(m)
        name = m.name + (" [演示]" if m.is_demo else "")
        status = m.status if is_active(m) else f"[yellow]{m.status}[/yellow]"
        table.add_row(branch, name, m.phone[:3] + "****" + m.phone[-4:], m.role, status, str(m.joined_on or ""),
                      "已绑定" if m.openid else "未绑定", m.wecom_userid or "", )
    console.print(table)
    console.print(f"共 {shown} 人" + (f"（其中已转出 {transferred} 人）" if transferred else ""))
    return 0


def _find_member(db: Session, name: str, phone_tail: str | None) -> Member:
    """One member by name; namesakes are told apart by the last four digits of the phone."""
    found = list(db.exec(select(Member).where(Member.name == name).order_by(Member.id)).all())
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
    store = _store(config)
    with store.session() as db:
        member = _find_member(db, name, phone_tail)
        branch = db.get(Branch, member.branch_id)
        branch_name = branch.name if branch else ""
        who = f"{member.name}（{branch_name}，尾号 {member.phone[-4:]}）"
        if not is_active(member) and role != Role.MEMBER.value:
            raise CliError(f"{who}已转出，不能授予{role}。如已转回，请先在名册中列入并导入。")
        if member.role == role:
            console.print(f"{who}已是{role}，无需变更。", highlight=False, markup=False)
            return 0
        others = []
        if role == Role.SECRETARY.value:
            others = [m.name for m in db.exec(active_members(
                Member.branch_id == member.branch_id, Member.role == Role.SECRETARY.value, Member.id != member.id)).all()]
        before, member.role = member.role, role
        db.add(member)
        record(db, _now(config), cli_actor(), "角色变更", f"{who}：{before} → {role}")
    scope = {Role.SECRETARY.value: f"，可管理{branch_name}", Role.ADMIN.value: "，可查看所有支部"}.get(role, "")
    console.print(f"已将{who}的角色由{before}改为{role}{scope}。", highlight=False, markup=False, soft_wrap=True)
    if others:
        console.print(f"提示：{branch_name}现有书记还有 {'、'.join(others)}。", style="yellow", highlight=False, markup=False)
    return 0


def cmd_members_grant(args: argparse.Namespace, config: Config) -> int:
    return _change_role(config, args.name, args.role, args.phone)


def cmd_members_revoke(args: argparse.Namespace, config: Config) -> int:
    return _change_role(config, args.name, Role.MEMBER.value, args.phone)


# ---------------------------------------------------------------- quiz


def _print_errors(errors: list, path: Path) -> None:
    limit = 50
    for error in errors[:limit]:
        err.print(f"[red]✗[/red] {escape(str(error))}", highlight=False)
    if len(errors) > limit:
        err.print(f"……另有 {len(errors) - limit} 处错误未列出")
    err.print(f"[red]{escape(path.name)} 有 {len(errors)} 处错误，未导入任何内容。请修改后重试。[/red]")


def _import_questions(store: Store, path: Path, config: Config) -> int:
    from quizzes.bank import check_file, import_questions

    checked = check_file(path)
    if checked.errors:
        _print_errors(checked.errors, path)
        return 1
    summary = "新增 {0.added} 题，更新 {0.updated} 题，无变化 {0.unchanged} 题"
    with store.session() as db, progress_bar(f"导入题库 {path.name}") as update:
        result = import_questions(db, checked.questions, progress=update)
        record(db, _now(config), cli_actor(), "导入题库", f"{path.name}：{summary.format(result)}")
    console.print(f"题库 {path.name}：{summary.format(result)}。", highlight=False, markup=False)
    return 0


def cmd_quiz_import(args: argparse.Namespace, config: Config) -> int:
    return _import_questions(_store(config), Path(args.file), config)


def cmd_quiz_validate(args: argparse.Namespace, config: Config) -> int:
    from collections import Counter

    from quizzes.bank import check_file

    path = Path(args.file)
    checked = check_file(path)
    if checked.errors:
        for error in checked.errors:
            err.print(f"[red]✗[/red] {escape(str(error))}", highlight=False)
        err.print(f"[red]{escape(path.name)}：{len(checked.errors)} 处错误。[/red]")
        return 1
    kinds = Counter(q.kind for q in checked.questions)
    categories = Counter(q.category for q in checked.questions)
    console.print(escape(f"{path.name}：{len(checked.questions)} 题全部有效（" + "，".join(f"{k} {v}" for k, v in kinds.items()) + "）"))
    for category, count in sorted(categories.items()):
        console.print(f"  {category}：{count} 题", highlight=False, markup=False)
    return 0


# ---------------------------------------------------------------- leaderboard


def cmd_leaderboard(args: argparse.Namespace, config: Config) -> int:
    from quizzes.standings import branch_board, month_board, total_board

    store = _store(config)
    month = args.month or _now(config).strftime("%Y-%m")
    with store.session() as db:
        branch_id = None
        if args.branch:
            branch = db.exec(select(Branch).where(Branch.name == args.branch)).first()
            if branch is None:
                raise CliError(f"没有名为「{args.branch}」的支部")
            branch_id = branch.id
        if args.scope == "branches":
            table = RichTable("名次", "支部", "人数", "已完成", "参与率", "平均分", title=f"{month} 各支部测试情况")
            for i, b in enumerate(branch_board(db, month), start=1):
                table.add_row(str(i), b.name, str(b.members), str(b.finished), f"{b.participation:.0%}", f"{b.average:.1f}")
        else:
            rows = month_board(db, month, branch_id) if args.scope == "month" else total_board(db, branch_id)
            title = f"{month} 测试排行榜" if args.scope == "month" else "累计积分排行榜"
            table = RichTable("名次", "姓名", "支部", "积分", "完成时间" if args.scope == "month" else "达到时间", title=title)
            for i, r in enumerate(rows[: args.top], start=1):
                when = r.at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M") if r.at else ""
                table.add_row(str(i), r.name, r.branch, str(r.points), when)
    console.print(table)
    return 0


# ---------------------------------------------------------------- export, audit


def cmd_broadcast(args: argparse.Namespace, config: Config) -> int:
    """The operator's broadcast: the same campaign a secretary's 通知 creates, after a preview."""
    from bot.outbox.worker import create_campaign

    text = args.text.strip()
    if not text:
        raise CliError("通知内容不能为空")
    if len(text.encode()) > 2048:
        raise CliError(f"通知内容过长：微信单条消息最多 2048 字节（约 680 个汉字），当前 {len(text.encode())} 字节")
    store = _store(config)
    # The preview and the write are separate transactions: nothing is held while the
    # operator reads the preview (on SQLite that would stop every writer).
    with store.session() as db:
        if args.branch:
            branch = db.exec(select(Branch).where(Branch.name == args.branch)).first()
            if branch is None:
                raise CliError(f"没有名为「{args.branch}」的支部")
            branches = [branch]
        else:
            branches = list(db.exec(select(Branch)).all())
        ids = [b.id for b in branches]
        members = db.exec(active_members(Member.branch_id.in_(ids))).all()  # type: ignore[attr-defined]
        bound = sum(1 for m in members if m.wecom_userid or (m.openid and m.subscribed))
    target = branches[0].name if args.branch else "全部支部"
    console.print(f"将发送给{target}：{len(members)} 人（已绑定 {bound} 人）\n——\n{text}\n——", highlight=False, markup=False)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("非交互环境请加 --yes 确认发送")
        if input("确认发送？[y/N] ").strip().lower() not in ("y", "yes", "是"):
            console.print("已取消，通知没有发送。")
            return 0
    with store.session() as db:
        campaign = create_campaign(db, kind="broadcast", title=args.title, text=text, member_ids=[m.id for m in members],  # type: ignore[misc]
                                   now=_now(config), branch_id=branches[0].id if args.branch else None)
        db.flush()
        record(db, _now(config), cli_actor(), "发布通知", f"#{campaign.id} → {target}（{len(members)} 人）：{text[:200]}")
    console.print(f"已创建通知 #{campaign.id}。服务运行时会自动发送；也可运行 branchbot outbox run 立即发送，branchbot outbox status {campaign.id} 查看结果。")
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
        record(db, _now(config), cli_actor(), "导出",
               f"{KINDS[args.kind]}（{args.kind}）{month}，{scope}，{len(export.rows)} 行 → {path.name}")
    console.print(f"已导出{KINDS[args.kind]}（{month}，{scope}）共 {len(export.rows)} 行：{path}", highlight=False, markup=False)
    if not export.rows:
        console.print("该月没有可导出的记录，文件中只有表头。", style="yellow", highlight=False)
    return 0


def cmd_audit(args: argparse.Namespace, config: Config) -> int:
    from bot.store.models import AuditEntry

    if args.limit < 1:
        raise CliError("--limit 应为正整数")
    store = _store(config)
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())  # type: ignore[union-attr]
    if args.action:
        query = query.where(AuditEntry.action == args.action)
    with store.session() as db:
        entries = db.exec(query.limit(args.limit)).all()
    if not entries:
        console.print("审计日志中没有" + (f"「{args.action}」的" if args.action else "") + "记录。", highlight=False)
        return 0
    table = RichTable("时间", "操作人", "操作", "内容", title="审计日志（最新在前）")
    for entry in entries:
        table.add_row(entry.at.astimezone(config.tz).strftime("%Y-%m-%d %H:%M:%S"), Text(entry.actor), Text(entry.action),
                      Text(entry.detail))
    console.print(table)
    console.print(f"显示最近 {len(entries)} 条")
    return 0


# ---------------------------------------------------------------- outbox, jobs, calendar


def cmd_outbox_run(args: argparse.Namespace, config: Config) -> int:
    from bot.outbox.worker import OutboxWorker

    worker = OutboxWorker(_store(config), config)
    try:
        with console.status("正在发送……"):
            worker.drain(max_seconds=args.max_seconds)
    finally:
        worker.stop()
    return cmd_outbox_status(argparse.Namespace(campaign=None), config)


def cmd_outbox_status(args: argparse.Namespace, config: Config) -> int:
    from sqlalchemy import func

    from bot.store.models import Campaign, Delivery

    store = _store(config)
    with store.session() as db:
        query = select(Campaign).order_by(Campaign.id.desc())  # type: ignore[union-attr]
        campaigns = [db.get(Campaign, args.campaign)] if args.campaign else db.exec(query.limit(20)).all()
        if args.campaign and campaigns[0] is None:
            raise CliError(f"没有编号为 {args.campaign} 的推送")
        table = RichTable("编号", "类型", "标题", "创建时间", "待发", "已发", "失败", "跳过", "待阅", "失败原因", title="推送状态")
        for campaign in campaigns:
            counts = dict(db.exec(select(Delivery.status, func.count(Delivery.id)).where(Delivery.campaign_id == campaign.id)
                                  .group_by(Delivery.status)).all())
            reasons = db.exec(select(Delivery.errcode, func.count(Delivery.id)).where(
                Delivery.campaign_id == campaign.id, Delivery.status == "failed").group_by(Delivery.errcode)).all()
            why = "，".join(f"{ERRCODE_TEXT.get(code, code)}×{n}" for code, n in reasons)
            table.add_row(str(campaign.id), campaign.kind, campaign.title or campaign.text[:16],
                          campaign.created_at.astimezone(config.tz).strftime("%m-%d %H:%M"),
                          str(counts.get("pending", 0) + counts.get("sending", 0)), str(counts.get("sent", 0)),
                          str(counts.get("failed", 0)), str(counts.get("skipped", 0)), str(counts.get("inbox", 0)), why)
    console.print(table)
    return 0


def cmd_jobs_list(args: argparse.Namespace, config: Config) -> int:
    from scheduler.runner import JobRunner

    runner = JobRunner(_store(config), config)
    table = RichTable("任务", "说明", "下次运行", "上次运行", "结果", "错过", title="定时任务")
    any_missed = False
    for name, spec in runner.specs.items():
        upcoming = runner.next_fire(name)
        last = runner.last_run(name)
        missed, latest_miss = runner.misses(name)
        any_missed = any_missed or bool(missed)
        table.add_row(name, spec.title, upcoming.strftime("%Y-%m-%d %H:%M") if upcoming else "",
                      last.scheduled_for.astimezone(config.tz).strftime("%Y-%m-%d %H:%M") if last else "从未",
                      last.detail if last else "",
                      f"{missed} 次，最近 {latest_miss.astimezone(config.tz):%Y-%m-%d %H:%M}" if latest_miss else "")
    console.print(table)
    if any_missed:
        console.print("错过的一次可以补发：branchbot jobs run NAME --at \"YYYY-MM-DD HH:MM\"")
    return 0


def cmd_jobs_run(args: argparse.Namespace, config: Config) -> int:
    from bot.outbox.worker import OutboxWorker
    from scheduler.runner import JobRunner

    store = _store(config)
    runner = JobRunner(store, config)
    if args.name not in runner.specs:
        raise CliError(f"没有名为 {args.name} 的任务。可用：{'、'.join(runner.specs)}")
    if args.at:
        try:
            when = datetime.strptime(args.at, "%Y-%m-%d %H:%M").replace(tzinfo=config.tz)
        except ValueError as exc:
            raise CliError(f"--at「{args.at}」应为 YYYY-MM-DD HH:MM") from exc
    else:
        when = runner.previous_fire(args.name) or _now(config)
    result = runner.run(args.name, when)
    local = result.scheduled_for.astimezone(config.tz).strftime("%Y-%m-%d %H:%M")
    if not result.ran:
        console.print(f"{args.name}（{local} 那一次）{result.detail}，本次未重复运行。")
        return 0
    console.print(f"{args.name}（{local}）：{result.detail}")
    if args.send:
        worker = OutboxWorker(store, config)
        try:
            worker.drain()
        finally:
            worker.stop()
    return 0


def cmd_calendar(args: argparse.Namespace, config: Config) -> int:
    from scheduler.calendar import reminder_plan
    from scheduler.jobs import schedules_from

    sources = {"chinese_calendar": "chinese_calendar 数据", "config": "配置 [holidays]", "statutory": "按放假办法推算"}
    plan = reminder_plan(args.year, config.reminders.days_before, schedules_from(config))
    table = RichTable("节日", "放假", "天数", "提醒日期", "数据来源", title=f"{args.year} 年廉洁过节提醒计划（节前 {config.reminders.days_before} 个工作日）")
    for reminder in plan:
        h = reminder.holiday
        table.add_row(h.title, f"{h.first:%m-%d} 至 {h.last:%m-%d}", str((h.last - h.first).days + 1),
                      f"{reminder.send_on:%Y-%m-%d} {'一二三四五六日'[reminder.send_on.weekday()]}", sources[h.source])
    console.print(table)
    if plan and plan[0].holiday.source == "statutory":
        console.print(f"{args.year} 年的调休安排尚无数据：按放假办法推算。国务院公布后，可在配置中添加 [holidays.{args.year}]。",
                      style="yellow", markup=False)
    return 0


# ---------------------------------------------------------------- db


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    from bot.store.migrate import upgrade

    before, after = upgrade(_store(config, must_exist=False))
    console.print(f"数据库已是最新版本 {after}。" if before == after else f"数据库已从 {before or '空库'} 升级到 {after}。")
    return 0


def cmd_db_backup(args: argparse.Namespace, config: Config) -> int:
    """SQLite's online backup: a consistent copy while the service keeps running."""
    import sqlite3

    store = _store(config)
    if not store.is_sqlite:
        raise CliError("db backup 只适用于 SQLite；PostgreSQL 请使用 pg_dump（见 README）。")
    target = Path(args.path)
    if target.exists():
        raise CliError(f"{target} 已存在，请换一个文件名")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(config.database.url.removeprefix("sqlite:///"))
    copy = sqlite3.connect(target)
    try:
        with Progress(TextColumn("备份数据库"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
            task = bar.add_task("backup", total=None)
            source.backup(copy, pages=256, progress=lambda status, remaining, total: bar.update(task, completed=total - remaining, total=total))
    finally:
        copy.close()
        source.close()
    console.print(f"已备份到 {target}")
    return 0


# ---------------------------------------------------------------- doctor


def cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    import json

    console.print("生效配置（密钥已隐藏）：")
    console.print_json(json.dumps(masked(config), ensure_ascii=False))
    problems: list[str] = []
    notes: list[str] = []
    w = config.wechat
    if not w.token:
        problems.append("wechat.token 为空：公众号后台填写的 Token 需通过 BRANCHBOT__WECHAT__TOKEN 提供")
    if w.mode != "plain" and len(w.encoding_aes_key) != 43:
        problems.append("wechat.encoding_aes_key 必须是 43 位")
    if config.wecom.corp_id and not config.wecom.enabled:
        problems.append("wecom.corp_id 已填写，但 wecom.token 或 wecom.encoding_aes_key 为空，/wecom 不会启用")
    if config.simulator.enabled:
        notes.append("simulator.enabled = true：模拟器可以伪造签名消息，正式上线前务必关闭")
    try:
        store = create_store(config.database.url)
        store.ping()
        if store.is_initialised():
            with store.session() as db:
                count = len(db.exec(select(Member.id)).all())
            notes.append(f"数据库可连接，名册 {count} 人")
        else:
            problems.append("数据库可连接但尚未初始化：运行 branchbot init")
    except Exception as exc:
        problems.append(f"数据库无法连接（{config.database.url}）：{exc}")
    for note in notes:
        console.print(f"[yellow]•[/yellow] {note}")
    for problem in problems:
        console.print(f"[red]✗[/red] {problem}")
    if not problems:
        console.print("[green]✓ 检查通过[/green]")
    return 1 if problems else 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="配置文件（默认 config.toml 或 $BRANCHBOT_CONFIG）")
    parser = argparse.ArgumentParser(prog="branchbot", description="党支部学习助手", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", parents=[common], help="创建或升级数据库并导入内置题库")
    p.add_argument("--demo", action="store_true", help="同时导入演示名册")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("serve", parents=[common], help="启动服务")
    p.add_argument("--workers", type=int, metavar="N", help="服务进程数（默认 server.workers，即 1）")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("chat", parents=[common], help="在终端里以名册成员身份对话")
    p.add_argument("--as", dest="as_name", required=True, metavar="NAME")
    p.set_defaults(func=cmd_chat)

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

    quiz = sub.add_parser("quiz", parents=[common], help="题库").add_subparsers(dest="action", required=True)
    p = quiz.add_parser("import", parents=[common], help="导入题库（CSV 或 XLSX，全部有效才导入）")
    p.add_argument("file")
    p.set_defaults(func=cmd_quiz_import)
    p = quiz.add_parser("validate", parents=[common], help="只检查题库文件，不导入")
    p.add_argument("file")
    p.set_defaults(func=cmd_quiz_validate)

    p = sub.add_parser("leaderboard", parents=[common], help="排行榜")
    p.add_argument("--scope", choices=["month", "total", "branches"], default="month")
    p.add_argument("--month", help="YYYY-MM，默认本月")
    p.add_argument("--branch", help="只看某个支部")
    p.add_argument("--top", type=int, default=20)
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("broadcast", parents=[common], help="向一个支部或全部支部发通知（经推送队列）")
    p.add_argument("text", help="通知内容")
    p.add_argument("--branch", help="支部名（默认全部支部）")
    p.add_argument("--title", default="支部通知")
    p.add_argument("--yes", action="store_true", help="不再询问，直接发送")
    p.set_defaults(func=cmd_broadcast)

    p = sub.add_parser("export", parents=[common], help="导出 Excel：scores 成绩、participation 参与率、attendance 考勤、deliveries 推送")
    p.add_argument("kind", metavar="KIND", choices=["scores", "participation", "attendance", "deliveries"],
                   help="scores / participation / attendance / deliveries")
    p.add_argument("--month", help="YYYY-MM，默认本月")
    p.add_argument("-o", "--output", required=True, metavar="FILE.xlsx")
    p.add_argument("--branch", help="只导出某个支部")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("audit", parents=[common], help="审计日志：导入、导出、角色变更、通知等")
    p.add_argument("--limit", type=int, default=50, help="显示条数（默认 50）")
    p.add_argument("--action", help="只看某类操作，如 导出、角色变更、导入名册")
    p.set_defaults(func=cmd_audit)

    outbox = sub.add_parser("outbox", parents=[common], help="推送队列").add_subparsers(dest="action", required=True)
    p = outbox.add_parser("run", parents=[common], help="立即发送待发的推送，发完为止")
    p.add_argument("--max-seconds", type=float, default=600)
    p.set_defaults(func=cmd_outbox_run)
    p = outbox.add_parser("status", parents=[common], help="各次推送的发送结果")
    p.add_argument("campaign", nargs="?", type=int)
    p.set_defaults(func=cmd_outbox_status)

    jobs = sub.add_parser("jobs", parents=[common], help="定时任务").add_subparsers(dest="action", required=True)
    jobs.add_parser("list", parents=[common], help="各任务下次运行时间").set_defaults(func=cmd_jobs_list)
    p = jobs.add_parser("run", parents=[common], help="立即运行一次（同一次不会重复运行）")
    p.add_argument("name")
    p.add_argument("--at", help="运行哪一次：YYYY-MM-DD HH:MM（默认最近一次应运行的时间）")
    p.add_argument("--send", action="store_true", help="运行后立即发送")
    p.set_defaults(func=cmd_jobs_run)

    p = sub.add_parser("calendar", parents=[common], help="某年的节日与廉洁过节提醒计划")
    p.add_argument("year", type=int)
    p.set_defaults(func=cmd_calendar)

    db = sub.add_parser("db", parents=[common], help="数据库").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", parents=[common], help="把数据库升级到程序的版本").set_defaults(func=cmd_db_upgrade)
    p = db.add_parser("backup", parents=[common], help="SQLite 在线备份（服务无需停止）")
    p.add_argument("path")
    p.set_defaults(func=cmd_db_backup)

    sub.add_parser("doctor", parents=[common], help="检查配置和数据库").set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.command == "serve" else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
        return args.func(args, config)
    except (ConfigError, CliError, FileProblem, SchemaMismatch) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
