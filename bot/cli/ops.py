"""outbox, jobs, calendar and database maintenance."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlmodel import col, select

from bot.cli.common import CliError, _now, _store, console, make_table
from bot.cli.parsing import ChineseArgumentParser, Commands, year
from bot.config import Config
from bot.errcodes import errcode_reason
from bot.exports import CAMPAIGN_KINDS
from bot.store import Store


def cmd_outbox_run(args: argparse.Namespace, config: Config) -> int:
    from bot.outbox.worker import OutboxWorker

    worker = OutboxWorker(_store(config), config)
    try:
        with console.status("正在发送……"):
            worker.drain(max_seconds=args.max_seconds)
    finally:
        worker.stop()
    return cmd_outbox_status(argparse.Namespace(campaign=None), config)


def delivery_counts(counts: dict[str, int]) -> str:
    """ "已发 8，失败 2"; only the statuses that occur."""
    parts = [
        ("待发", counts.get("pending", 0) + counts.get("sending", 0)),
        ("已发", counts.get("sent", 0)),
        ("失败", counts.get("failed", 0)),
        ("待阅", counts.get("inbox", 0)),
        ("跳过", counts.get("skipped", 0)),
    ]
    return "，".join(f"{label} {n}" for label, n in parts if n) or "无收件人"


def failure_reasons(rows: Sequence[tuple[int | None, str | None, int]]) -> str:
    """Failed deliveries by reason, most frequent first, in Chinese (never "None")."""
    merged: dict[str, int] = {}
    for errcode, errmsg, n in rows:
        reason = errcode_reason(errcode, errmsg or "") or "原因未记录"
        merged[reason] = merged.get(reason, 0) + n
    return "；".join(f"{reason}（{n} 人）" for reason, n in sorted(merged.items(), key=lambda kv: -kv[1]))


def cmd_outbox_status(args: argparse.Namespace, config: Config) -> int:
    from sqlalchemy import func

    from bot.store.models import Campaign, Delivery

    store = _store(config)
    with store.session() as db:
        query = select(Campaign).order_by(col(Campaign.id).desc())
        if args.campaign:
            chosen = db.get(Campaign, args.campaign)
            if chosen is None:
                raise CliError(f"没有编号为 {args.campaign} 的推送")
            campaigns = [chosen]
        else:
            campaigns = list(db.exec(query.limit(20)).all())
        table = make_table("编号", "类型", "标题", "创建时间", "结果", "失败原因", title="推送状态")
        for campaign in campaigns:
            counts = dict(
                db.exec(
                    select(col(Delivery.status), func.count(col(Delivery.id)))
                    .where(col(Delivery.campaign_id) == campaign.id)
                    .group_by(col(Delivery.status))
                ).all()
            )
            reasons = db.exec(
                select(col(Delivery.errcode), col(Delivery.errmsg), func.count(col(Delivery.id)))
                .where(col(Delivery.campaign_id) == campaign.id, col(Delivery.status) == "failed")
                .group_by(col(Delivery.errcode), col(Delivery.errmsg))
            ).all()
            table.add_row(
                str(campaign.id),
                CAMPAIGN_KINDS.get(campaign.kind, campaign.kind),
                campaign.title or campaign.text[:16],
                campaign.created_at.astimezone(config.tz).strftime("%m-%d %H:%M"),
                delivery_counts(counts),
                failure_reasons(reasons),
            )
        if not campaigns:
            console.print("还没有任何推送。")
            return 0
    console.print(table)
    _print_retry_waiting(store, config)
    return 0


def _print_retry_waiting(store: Store, config: Config) -> None:
    """Deliveries that failed for a reason that may pass, waiting for their next try."""
    from bot.outbox.waiting import waiting_to_retry

    with store.session() as db:
        waiting = waiting_to_retry(db, config.outbox.retry_window)
    if not waiting:
        return
    table = make_table("编号", "类型", "标题", "待重试", "最近错误", "下次重试", "最晚重试至", title="等待重试")
    for w in waiting:
        reason = errcode_reason(w.errcode, w.errmsg)
        if w.errmsg and w.errmsg not in reason:
            reason += f"（{w.errmsg}）"
        table.add_row(
            str(w.campaign_id),
            CAMPAIGN_KINDS.get(w.kind, w.kind),
            w.title,
            str(w.deliveries),
            reason,
            w.next_try.astimezone(config.tz).strftime("%m-%d %H:%M:%S"),
            w.give_up_at.astimezone(config.tz).strftime("%m-%d %H:%M"),
        )
    console.print(table)
    console.print(
        f"失败原因可能自行消除（接口故障、限流等）的推送会自动重试，最长 {config.outbox.retry_window / 3600:g} 小时（outbox.retry_window）。"
    )


def cmd_jobs_list(args: argparse.Namespace, config: Config) -> int:
    from scheduler.runner import JobRunner

    runner = JobRunner(_store(config), config)
    table = make_table("任务", "说明", "下次运行", "上次运行", "结果", "错过", title="定时任务")
    for column in (0, 2):  # job names are typed back into `jobs run`: never split them
        table.columns[column].no_wrap = True
    any_missed = False
    for name, spec in runner.specs.items():
        upcoming = runner.next_fire(name)
        last = runner.last_run(name)
        missed, latest_miss = runner.misses(name)
        any_missed = any_missed or bool(missed)
        table.add_row(
            name,
            spec.title,
            upcoming.strftime("%Y-%m-%d %H:%M") if upcoming else "",
            last.scheduled_for.astimezone(config.tz).strftime("%Y-%m-%d %H:%M") if last else "从未",
            last.detail if last else "",
            f"{missed} 次，最近 {latest_miss.astimezone(config.tz):%Y-%m-%d %H:%M}" if latest_miss else "",
        )
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
    from scheduler.calendar import festival_dates, reminder_plan, source_of
    from scheduler.dates import short_weekday_name
    from scheduler.jobs import schedules_from

    sources = {
        "chinese_calendar": "chinese_calendar 数据包",
        "config": "配置 [holidays]",
        "statutory": "按放假办法推算",
    }
    schedules = schedules_from(config)
    plan = reminder_plan(args.year, config.reminders.days_before, schedules)
    dates = {f.name: f for f in festival_dates(args.year)}

    def own_date(name: str) -> str:
        f = dates[name]
        return f"{f.day:%m-%d}" + (f"（除夕 {f.eve:%m-%d}）" if f.eve else "")

    def on(day: date) -> str:
        return (f"{day:%m-%d}" if day.year == args.year else f"{day:%Y-%m-%d}") + f" {short_weekday_name(day)}"

    table = make_table(
        "节日",
        "节日日期",
        "放假",
        "廉洁过节提醒",
        title=f"{args.year} 年节日与廉洁过节提醒（节前 {config.reminders.days_before} 个工作日）",
    )
    for reminder in plan:
        h = reminder.holiday
        names = h.names
        table.add_row(
            "\n".join(names),
            "\n".join(own_date(n) for n in names),
            (f"{h.first:%m-%d} 至 {h.last:%m-%d}" if h.last != h.first else f"{h.first:%m-%d}")
            + f"，{(h.last - h.first).days + 1} 天",
            on(reminder.send_on),
        )
    console.print(table)
    others = [f for f in dates.values() if not f.day_off]
    if others:
        console.print(
            "不放假的节日：" + "，".join(f"{f.name} {f.day:%m-%d}" for f in others), highlight=False, markup=False
        )
    source = source_of(args.year, schedules)
    if source != "statutory":
        console.print(f"放假安排来源：{sources[source]}。", highlight=False, markup=False)
    else:
        console.print(
            f"{args.year} 年的调休安排尚无数据：按放假办法推算。国务院公布后，可在配置中添加 [holidays.{args.year}]。",
            style="yellow",
            markup=False,
        )
    return 0


# ---------------------------------------------------------------- db


def cmd_db_upgrade(args: argparse.Namespace, config: Config) -> int:
    from bot.store.migrate import upgrade

    before, after = upgrade(_store(config, must_exist=False))
    console.print(
        f"数据库已是最新版本 {after}。" if before == after else f"数据库已从 {before or '空库'} 升级到 {after}。"
    )
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
            source.backup(
                copy,
                pages=256,
                progress=lambda status, remaining, total: bar.update(task, completed=total - remaining, total=total),
            )
    finally:
        copy.close()
        source.close()
    console.print(f"已备份到 {target}")
    return 0


def register(sub: Commands, common: ChineseArgumentParser) -> None:
    """outbox, jobs, calendar and db."""
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
    p.add_argument("year", type=year, metavar="年份", help="如 2027")
    p.set_defaults(func=cmd_calendar)

    db = sub.add_parser("db", parents=[common], help="数据库").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", parents=[common], help="把数据库升级到程序的版本").set_defaults(func=cmd_db_upgrade)
    p = db.add_parser("backup", parents=[common], help="SQLite 在线备份（服务无需停止）")
    p.add_argument("path")
    p.set_defaults(func=cmd_db_backup)
