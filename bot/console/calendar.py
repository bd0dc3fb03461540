"""/console/calendar 日历与任务 (admins): the year's 廉洁过节 reminder plan and each
scheduled job's last and next run and misses — what ``branchbot calendar`` and
``branchbot jobs list`` print, from the same functions."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from bot.console.web import Console, Page, Refused
from scheduler.calendar import reminder_plan
from scheduler.dates import weekday_name
from scheduler.jobs import schedules_from
from scheduler.runner import JobRunner

SOURCES = {"chinese_calendar": "chinese_calendar 数据", "config": "配置 [holidays]", "statutory": "按放假办法推算"}


def view(page: Page) -> Response:
    text = page.arg("year") or str(page.now.year)
    if not text.isdigit() or not 1901 <= int(text) <= 2099:
        raise Refused("年份应在 1901 到 2099 之间。", 400)
    year = int(text)
    plan = reminder_plan(year, page.config.reminders.days_before, schedules_from(page.config))
    runner = JobRunner(page.store, page.config, page.clock)
    jobs = []
    for name, spec in runner.specs.items():
        last = runner.last_run(name, page.db)
        missed, latest_miss = runner.misses(name, page.db)
        jobs.append(
            {
                "name": name,
                "title": spec.title,
                "next": runner.next_fire(name),
                "last": last,
                "missed": missed,
                "latest_miss": latest_miss,
            }
        )
    return page.render(
        "calendar.html",
        title="日历与任务",
        year=year,
        plan=plan,
        sources=SOURCES,
        weekday_name=weekday_name,
        jobs=jobs,
        days_before=page.config.reminders.days_before,
    )


def routes(console: Console) -> list[Route]:
    return [console.route("/console/calendar", view, admin=True)]
