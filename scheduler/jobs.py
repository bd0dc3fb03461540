"""The scheduled jobs. Each one only creates campaigns in the outbox; the outbox sends.

A job receives the time it was scheduled for (not the time it happens to run), so a
run caught up after downtime behaves as the original would have.
"""

from __future__ import annotations

import calendar
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete
from sqlmodel import Session, col, select

from bot.config import Config
from bot.outbox.campaigns import create_campaign
from bot.store import Attempt, BindAttempt, Branch, CallbackNonce, Member, ProcessedMessage, Role
from bot.store.members import active_members, ids_of
from bot.store.models import saved_id
from quizzes.monthly import ensure_paper
from scheduler.calendar import YearSchedule, reminder_plan
from scheduler.dates import anniversary_years, birthday_lines, nth_weekday, weekday_name
from scheduler.templates import holiday_extra, render

log = logging.getLogger("branchbot.scheduler")


@dataclass
class JobContext:
    db: Session
    config: Config
    when: datetime  # the scheduled time, in the configured timezone
    run_id: int

    @property
    def today(self) -> date:
        return self.when.date()

    def push(
        self,
        kind: str,
        text: str,
        member_ids: list[int],
        title: str = "",
        branch_id: int | None = None,
        robot: bool = False,
    ) -> int:
        if not member_ids:
            return 0
        create_campaign(
            self.db,
            kind=kind,
            text=text,
            title=title,
            member_ids=member_ids,
            now=self.when,
            branch_id=branch_id,
            job_run_id=self.run_id,
            robot=robot,
        )
        return len(set(member_ids))


JobFn = Callable[[JobContext], str]


@dataclass(frozen=True)
class JobSpec:
    name: str
    title: str
    cron: dict[str, str]
    run: JobFn

    def trigger(self, config: Config) -> CronTrigger:
        return CronTrigger(timezone=config.tz, **self.cron)


def _at(hhmm: str) -> dict[str, str]:
    hour, minute = hhmm.split(":")
    return {"hour": str(int(hour)), "minute": str(int(minute))}


def _members_by_branch(db: Session) -> dict[int, list[Member]]:
    grouped: dict[int, list[Member]] = defaultdict(list)
    for member in db.exec(active_members().order_by(col(Member.id))).all():
        grouped[member.branch_id].append(member)
    return grouped


# ---------------------------------------------------------------------- jobs


def monthly_quiz(ctx: JobContext) -> str:
    cfg = ctx.config.quiz
    month = ctx.when.strftime("%Y-%m")
    branches, reached = 0, 0
    for branch_id, members in _members_by_branch(ctx.db).items():
        paper = ensure_paper(ctx.db, branch_id, month, cfg.questions_per_paper, cfg.categories, ctx.when)
        if paper is None:
            return "题库为空，未发布"
        text = render(ctx.config, "monthly_quiz", count=len(paper.question_ids), points=cfg.points_per_correct)
        reached += ctx.push(
            "monthly_quiz", text, ids_of(members), title="本月党史学习测试", branch_id=branch_id, robot=True
        )
        branches += 1
    return f"{branches} 个支部的 {month} 试卷已发布，通知 {reached} 人"


def quiz_reminder(ctx: JobContext) -> str:
    last_day = calendar.monthrange(ctx.today.year, ctx.today.month)[1]
    days_left = last_day - ctx.today.day
    if days_left != ctx.config.scheduler.quiz_reminder_days_before_end:
        return "今天不是提醒日"
    month = ctx.when.strftime("%Y-%m")
    finished = set(
        ctx.db.exec(
            select(col(Attempt.member_id)).where(col(Attempt.month) == month, col(Attempt.finished_at).is_not(None))
        ).all()
    )
    reached = 0
    text = render(ctx.config, "quiz_reminder", days_left=days_left)
    for branch_id, members in _members_by_branch(ctx.db).items():
        reached += ctx.push(
            "quiz_reminder", text, ids_of(m for m in members if m.id not in finished), branch_id=branch_id
        )
    return f"提醒 {reached} 位未完成测试的党员"


def holiday_reminder(ctx: JobContext) -> str:
    schedules = schedules_from(ctx.config)
    sent = []
    for year in (ctx.today.year, ctx.today.year + 1):
        for reminder in reminder_plan(year, ctx.config.reminders.days_before, schedules):
            if reminder.send_on != ctx.today:
                continue
            holiday = reminder.holiday
            text = render(
                ctx.config,
                "holiday",
                title=holiday.title,
                first=f"{holiday.first.month}月{holiday.first.day}日",
                extra=holiday_extra(ctx.config, holiday.names),
            )
            for branch_id, members in _members_by_branch(ctx.db).items():
                ctx.push(
                    "holiday",
                    text,
                    ids_of(members),
                    title=f"{holiday.title}廉洁过节提醒",
                    branch_id=branch_id,
                    robot=True,
                )
            sent.append(holiday.title)
    return f"已发送：{'、'.join(sent)}" if sent else "今天没有节前提醒"


def integrity_reminder(ctx: JobContext) -> str:
    """每月廉政提醒 to every active member, unless a 廉洁过节 reminder is within 7 days."""
    from scheduler.integrity import ReminderFileProblem, load_reminders, near_holiday_reminder, reminder_for

    schedules = schedules_from(ctx.config)
    sends = [
        r.send_on
        for year in (ctx.today.year - 1, ctx.today.year, ctx.today.year + 1)
        for r in reminder_plan(year, ctx.config.reminders.days_before, schedules)
    ]
    if (near := near_holiday_reminder(ctx.today, sends)) is not None:
        return f"本月跳过：{near.month}月{near.day}日有廉洁过节提醒"
    note = ""
    try:
        reminders = load_reminders(ctx.config.scheduler.integrity_file)
    except ReminderFileProblem as exc:
        log.warning("integrity reminders: %s; using the bundled ones", exc)
        reminders, note = load_reminders(), f"（自定义提醒文件有误，仅用内置提醒：{exc}）"
    chosen = reminder_for(ctx.today, reminders)
    text = render(ctx.config, "integrity", text=chosen.text, source=chosen.source)
    reached = 0
    for branch_id, members in _members_by_branch(ctx.db).items():
        reached += ctx.push("integrity", text, ids_of(members), title="每月廉政提醒", branch_id=branch_id, robot=True)
    return f"发送给 {reached} 人：{chosen.source}{note}"


def birthday_greetings(ctx: JobContext) -> str:
    greeted = 0
    for member in ctx.db.exec(active_members().order_by(col(Member.id))).all():
        years = anniversary_years(member.joined_on, ctx.today)
        if years:
            text = render(ctx.config, "birthday", name=member.name, years=years)
            greeted += ctx.push("birthday", text, [member.id], title="政治生日", branch_id=member.branch_id)
    return f"问候 {greeted} 位党员"


def birthday_digest(ctx: JobContext) -> str:
    """On the 1st: each secretary gets the branch's political birthdays this month."""
    branches = {b.id: b.name for b in ctx.db.exec(select(Branch)).all()}
    sent = 0
    for branch_id, members in _members_by_branch(ctx.db).items():
        lines = birthday_lines(members, ctx.today.year, ctx.today.month)
        secretaries = ids_of(m for m in members if m.role == Role.SECRETARY.value)
        if lines and secretaries:
            text = render(
                ctx.config,
                "birthday_digest",
                branch=branches.get(branch_id, ""),
                count=len(lines),
                lines="\n".join(lines),
            )
            sent += ctx.push("birthday_digest", text, secretaries, title="本月政治生日", branch_id=branch_id)
    return f"发送给 {sent} 位书记"


def meeting_reminder(ctx: JobContext) -> str:
    tomorrow = ctx.today + timedelta(days=1)
    by_branch = _members_by_branch(ctx.db)
    branches = {b.name: saved_id(b.id) for b in ctx.db.exec(select(Branch)).all()}
    sent = []
    for rule in ctx.config.meetings:
        if (
            tomorrow.month not in rule.months
            or nth_weekday(tomorrow.year, tomorrow.month, rule.weekday, rule.nth) != tomorrow
        ):
            continue
        targets = (
            list(branches.values())
            if rule.branch == "*"
            else [branches[rule.branch]]
            if rule.branch in branches
            else []
        )
        topic = f"主题：{rule.topic}。" if rule.topic else ""
        text = render(
            ctx.config,
            "meeting",
            date=f"{tomorrow.month}月{tomorrow.day}日",
            weekday=weekday_name(tomorrow),
            time=rule.time,
            type=rule.type,
            place=rule.place,
            topic=topic,
        )
        for branch_id in targets:
            ctx.push(
                "meeting",
                text,
                ids_of(by_branch.get(branch_id, [])),
                title=f"{rule.type}提醒",
                branch_id=branch_id,
                robot=True,
            )
        sent.append(f"{rule.type}（{len(targets)} 个支部）")
    return f"已提醒：{'、'.join(sent)}" if sent else "明天没有例行会议"


HOUSEKEEPING_BATCH = 100_000


def housekeeping(ctx: JobContext) -> str:
    """Forget message keys and binding attempts past ``scheduler.keep_records_days``.

    A key only has to outlive WeChat's retries (seconds) and a binding attempt the
    lockout hour; kept for a month they answer "was this handled?" questions, kept for
    ever they grow by every message. Deliveries, answers and the ledger are records of
    the branch's work and are never pruned here."""
    cutoff = ctx.when - timedelta(days=ctx.config.scheduler.keep_records_days)
    # At most HOUSEKEEPING_BATCH keys a night: the job is one transaction, and on SQLite
    # that holds the writer. A first run on a long-lived database clears its backlog
    # over a few nights.
    oldest = (
        select(col(ProcessedMessage.key)).where(col(ProcessedMessage.created_at) < cutoff).limit(HOUSEKEEPING_BATCH)
    )
    keys = ctx.db.exec(delete(ProcessedMessage).where(col(ProcessedMessage.key).in_(oldest))).rowcount
    binds = ctx.db.exec(delete(BindAttempt).where(col(BindAttempt.at) < cutoff)).rowcount
    # A callback nonce can only be replayed while its timestamp is inside the window,
    # at most twice the window after it was seen; with the window off, keep it as long
    # as the message keys.
    window = ctx.config.wechat.replay_window
    nonce_cutoff = ctx.when - timedelta(seconds=2 * window) if window else cutoff
    oldest_nonces = (
        select(col(CallbackNonce.key)).where(col(CallbackNonce.seen_at) < nonce_cutoff).limit(HOUSEKEEPING_BATCH)
    )
    ctx.db.exec(delete(CallbackNonce).where(col(CallbackNonce.key).in_(oldest_nonces)))
    more = "，其余的下次继续" if keys >= HOUSEKEEPING_BATCH else ""
    return f"清理 {keys} 条消息去重记录、{binds} 条绑定尝试记录（{ctx.config.scheduler.keep_records_days} 天前）{more}"


def schedules_from(config: Config) -> dict[int, YearSchedule]:
    schedules = {}
    for year, entries in config.holidays.items():
        days_off = {name: (days[0], days[1]) for name, days in entries.items() if name != "调休"}
        schedules[year] = YearSchedule(days_off, frozenset(entries.get("调休", [])))
    return schedules


def job_specs(config: Config) -> list[JobSpec]:
    s = config.scheduler
    return [
        JobSpec(
            "monthly_quiz", "发布月度测试", {"day": str(s.monthly_quiz_day), **_at(s.monthly_quiz_time)}, monthly_quiz
        ),
        JobSpec("quiz_reminder", "月底催答", _at(s.quiz_reminder_time), quiz_reminder),
        JobSpec("holiday_reminder", "廉洁过节提醒", _at(s.holiday_time), holiday_reminder),
        JobSpec(
            "integrity_reminder",
            "每月廉政提醒",
            {"day": str(s.integrity_day), **_at(s.integrity_time)},
            integrity_reminder,
        ),
        JobSpec("birthday_greetings", "政治生日问候", _at(s.birthday_time), birthday_greetings),
        JobSpec("birthday_digest", "本月政治生日（发书记）", {"day": "1", **_at(s.birthday_time)}, birthday_digest),
        JobSpec("meeting_reminder", "三会一课提醒", _at(s.meeting_reminder_time), meeting_reminder),
        JobSpec("housekeeping", "清理过期记录", _at(s.housekeeping_time), housekeeping),
    ]
