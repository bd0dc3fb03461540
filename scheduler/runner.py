"""APScheduler wiring, once-only runs and catch-up.

APScheduler only says *when*. Whether a (job, scheduled time) has run is decided by a
unique row in the store, written in the same transaction as the job's campaigns: a job
never runs twice, whichever process or restart gets there first, and a run that died
half-way left nothing behind and will be caught up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.config import Config
from bot.store import Store
from bot.store.models import JobRun
from scheduler.jobs import JobContext, JobSpec, job_specs

log = logging.getLogger("branchbot.scheduler")
LOOKBACK = timedelta(days=32)


@dataclass(frozen=True)
class RunResult:
    job: str
    scheduled_for: datetime
    ran: bool
    detail: str


class JobRunner:
    def __init__(self, store: Store, config: Config, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 on_push: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.on_push = on_push
        self.specs = {spec.name: spec for spec in job_specs(config)}
        self._scheduler: BackgroundScheduler | None = None

    def grace(self, name: str) -> int:
        return self.config.scheduler.misfire_grace.get(name, self.config.scheduler.default_misfire_grace)

    def previous_fire(self, name: str, now: datetime | None = None) -> datetime | None:
        """The latest scheduled time at or before now."""
        now = (now or self.clock()).astimezone(self.config.tz)
        trigger = self.specs[name].trigger(self.config)
        latest, cursor = None, trigger.get_next_fire_time(None, now - LOOKBACK)
        while cursor is not None and cursor <= now:
            latest = cursor
            cursor = trigger.get_next_fire_time(cursor, cursor + timedelta(seconds=1))
        return latest

    def next_fire(self, name: str) -> datetime | None:
        now = self.clock().astimezone(self.config.tz)
        return self.specs[name].trigger(self.config).get_next_fire_time(None, now)

    def last_run(self, name: str) -> JobRun | None:
        with self.store.session() as db:
            return db.exec(select(JobRun).where(JobRun.job == name).order_by(JobRun.scheduled_for.desc())).first()  # type: ignore[attr-defined]

    def run(self, name: str, scheduled_for: datetime) -> RunResult:
        """Run one occurrence, unless it already ran (here or in another process)."""
        spec: JobSpec = self.specs[name]
        scheduled_for = scheduled_for.astimezone(timezone.utc).replace(second=0, microsecond=0)
        try:
            with self.store.session() as db:
                if db.exec(select(JobRun).where(JobRun.job == name, JobRun.scheduled_for == scheduled_for)).first():
                    return RunResult(name, scheduled_for, False, "已运行过")
                record = JobRun(job=name, scheduled_for=scheduled_for, started_at=self.clock())
                db.add(record)
                db.flush()
                context = JobContext(db, self.config, scheduled_for.astimezone(self.config.tz), record.id)  # type: ignore[arg-type]
                detail = spec.run(context)
                record.status, record.detail, record.finished_at = "done", detail, self.clock()
                db.add(record)
        except IntegrityError:
            return RunResult(name, scheduled_for, False, "已由其他实例运行")
        log.info("job %s for %s: %s", name, scheduled_for.isoformat(), detail)
        self.on_push()
        return RunResult(name, scheduled_for, True, detail)

    def catch_up(self) -> list[RunResult]:
        """Runs missed while the process was down, if still within their grace window."""
        now = self.clock()
        results = []
        for name in self.specs:
            fire = self.previous_fire(name, now)
            if fire is not None and now - fire <= timedelta(seconds=self.grace(name)):
                try:
                    result = self.run(name, fire)
                except Exception:
                    log.exception("catch-up of %s failed", name)
                    continue
                if result.ran:
                    results.append(result)
        return results

    def _fire(self, name: str) -> None:
        fire = self.previous_fire(name)
        if fire is not None:
            try:
                self.run(name, fire)
            except Exception:
                log.exception("job %s failed", name)

    def start(self) -> None:
        scheduler = BackgroundScheduler(timezone=self.config.tz)
        for name, spec in self.specs.items():
            scheduler.add_job(self._fire, spec.trigger(self.config), args=[name], id=name, name=spec.title,
                              misfire_grace_time=self.grace(name) or None, coalesce=True, max_instances=1)
        # Live contests move on every few seconds; each step is claimed in the store.
        scheduler.add_job(self._tick_contests, "interval", seconds=5, id="contest_tick", name="抢答赛计时",
                          coalesce=True, max_instances=1)
        scheduler.start()
        self._scheduler = scheduler
        try:
            self.catch_up()
        except Exception:
            log.exception("catch-up failed")

    def _tick_contests(self) -> None:
        from scheduler.contests import tick

        try:
            if tick(self.store, self.config, self.clock()):
                self.on_push()
        except Exception:
            log.exception("contest tick failed")

    def stop(self) -> None:
        if self._scheduler:
            self._scheduler.shutdown(wait=False)
