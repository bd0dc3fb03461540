"""APScheduler wiring, once-only runs and catch-up.

APScheduler only says *when*. Whether a (job, scheduled time) has run is decided by a
unique row in the store, written in the same transaction as the job's campaigns: a job
never runs twice, whichever process or restart gets there first, and a run that died
half-way left nothing behind and will be caught up.

An occurrence that catch-up finds beyond its grace window gets the same unique row with
status ``missed`` (see ``record_misses``), so /metrics and ``branchbot jobs list`` show
it, once, however many instances start up. A manual run (``branchbot jobs run``) may
still take a missed occurrence over and run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.config import Config
from bot.store import Store
from bot.store.models import JobRun, JobStatus, saved_id
from scheduler.jobs import JobContext, JobSpec, job_specs

log = logging.getLogger("branchbot.scheduler")


class _DemoteToDebug(logging.Filter):
    """APScheduler reports every job at INFO: "Adding job tentatively" and "Added job" at
    each start, "Running job" and "executed successfully" at every run (the contest timer
    runs every 5 seconds). The jobs log their own outcomes, so this chatter is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


_DEMOTE = _DemoteToDebug()
for _name in ("apscheduler.scheduler", "apscheduler.executors.default"):
    if _DEMOTE not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_DEMOTE)
LOOKBACK = timedelta(days=32)
MISSED = JobStatus.MISSED


@dataclass(frozen=True)
class RunResult:
    job: str
    scheduled_for: datetime
    ran: bool
    detail: str


class JobRunner:
    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_push: Callable[[], None] = lambda: None,
    ) -> None:
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
        fires = self.fires(name, (now or self.clock()) - LOOKBACK, now)
        return fires[-1] if fires else None

    def fires(self, name: str, after: datetime, now: datetime | None = None) -> list[datetime]:
        """The scheduled times after ``after`` and at or before now, at most LOOKBACK back."""
        now = (now or self.clock()).astimezone(self.config.tz)
        after = max(after, now - LOOKBACK)
        trigger = self.specs[name].trigger(self.config)
        found, cursor = [], trigger.get_next_fire_time(None, after)
        while cursor is not None and cursor <= now:
            if cursor > after:
                found.append(cursor)
            cursor = trigger.get_next_fire_time(cursor, cursor + timedelta(seconds=1))
        return found

    def next_fire(self, name: str) -> datetime | None:
        now = self.clock().astimezone(self.config.tz)
        when: datetime | None = self.specs[name].trigger(self.config).get_next_fire_time(None, now)  # untyped library
        return when

    def last_run(self, name: str, db: Session | None = None) -> JobRun | None:
        """The latest occurrence that ran (or is running), missed ones aside. Pass ``db``
        to read inside a session already open (the console's request)."""
        with self._session(db) as session:
            return session.exec(
                select(JobRun)
                .where(col(JobRun.job) == name, col(JobRun.status) != MISSED)
                .order_by(col(JobRun.scheduled_for).desc())
            ).first()

    def misses(self, name: str, db: Session | None = None) -> tuple[int, datetime | None]:
        """How many occurrences were recorded as missed, and the latest of them."""
        with self._session(db) as session:
            count, latest = session.exec(
                select(func.count(col(JobRun.id)), func.max(col(JobRun.scheduled_for))).where(
                    col(JobRun.job) == name, col(JobRun.status) == MISSED
                )
            ).one()
        return count, latest

    @contextmanager
    def _session(self, db: Session | None) -> Iterator[Session]:
        if db is not None:
            yield db
        else:
            with self.store.session() as session:
                yield session

    def run(self, name: str, scheduled_for: datetime) -> RunResult:
        """Run one occurrence, unless it already ran (here or in another process)."""
        spec: JobSpec = self.specs[name]
        scheduled_for = scheduled_for.astimezone(UTC).replace(second=0, microsecond=0)
        try:
            with self.store.session() as db:
                record = db.exec(
                    select(JobRun).where(col(JobRun.job) == name, col(JobRun.scheduled_for) == scheduled_for)
                ).first()
                if record is None:
                    record = JobRun(job=name, scheduled_for=scheduled_for, started_at=self.clock())
                    db.add(record)
                    db.flush()
                elif record.status != MISSED:
                    return RunResult(name, scheduled_for, False, "已运行过")
                elif not db.exec(
                    update(JobRun)
                    .where(col(JobRun.id) == record.id, col(JobRun.status) == MISSED)
                    .values(status=JobStatus.RUNNING, started_at=self.clock(), detail="")
                ).rowcount:
                    return RunResult(name, scheduled_for, False, "已由其他实例运行")  # another took the missed one over
                context = JobContext(db, self.config, scheduled_for.astimezone(self.config.tz), saved_id(record.id))
                detail = spec.run(context)
                record.status, record.detail, record.finished_at = JobStatus.DONE, detail, self.clock()
                db.add(record)
        except IntegrityError:
            return RunResult(name, scheduled_for, False, "已由其他实例运行")
        log.info("job %s for %s: %s", name, scheduled_for.isoformat(), detail)
        self.on_push()
        return RunResult(name, scheduled_for, True, detail)

    def catch_up(self) -> list[RunResult]:
        """Runs missed while the process was down, if still within their grace window;
        what is beyond it is recorded as missed."""
        now = self.clock()
        results = []
        for name in self.specs:
            fire = self.previous_fire(name, now)
            if fire is None:
                continue
            in_grace = now - fire <= timedelta(seconds=self.grace(name))
            try:
                self.record_misses(name, now, latest_too=not in_grace)
            except Exception:
                log.exception("recording missed runs of %s failed", name)
            if not in_grace:
                continue
            try:
                result = self.run(name, fire)
            except Exception:
                log.exception("catch-up of %s failed", name)
                continue
            if result.ran:
                results.append(result)
        return results

    def record_misses(self, name: str, now: datetime, latest_too: bool = True) -> list[datetime]:
        """Record the occurrences of ``name`` that never ran and are past catching up, as
        ``missed`` rows under the same unique (job, scheduled time) as a run: counted once,
        whichever instance gets there first, and never where a run is recorded.

        Only what the store shows cheaply is counted: the occurrences after the job's
        latest recorded one (run or missed), at most LOOKBACK (32 days) back, the latest
        one only when ``latest_too`` (catch-up passes False while it is still within its
        grace, because it is about to run). A job with no recorded occurrence at all
        counts its latest occurrence only, and only if the scheduler had already acted
        before it (some job's row was started earlier): a fresh install reports nothing,
        and a job new in this release may report its latest occurrence once. Occurrences
        older than the job's latest recorded one are never revisited, and a change of a
        job's time counts nothing for the times it no longer has."""
        with self.store.session() as db:
            latest_recorded = db.exec(select(func.max(col(JobRun.scheduled_for))).where(col(JobRun.job) == name)).one()
            fires = self.fires(name, latest_recorded or now - LOOKBACK, now)
            if latest_recorded is None:
                fires = fires[-1:]
                if fires and not db.exec(select(col(JobRun.id)).where(col(JobRun.started_at) < fires[0])).first():
                    fires = []  # nothing shows the scheduler was running before it
        if fires and not latest_too:
            fires = fires[:-1]
        recorded = []
        grace = self.grace(name)
        for fire in fires:
            scheduled_for = fire.astimezone(UTC).replace(second=0, microsecond=0)
            try:
                with self.store.session() as db:
                    db.add(
                        JobRun(
                            job=name,
                            scheduled_for=scheduled_for,
                            started_at=now,
                            finished_at=now,
                            status=MISSED,
                            detail=f"错过：到点时服务未运行，已超出补发时限（{grace} 秒）",
                        )
                    )
            except IntegrityError:
                continue  # ran, or already recorded as missed, by another instance
            recorded.append(scheduled_for)
        if recorded:
            latest = recorded[-1].astimezone(self.config.tz).strftime("%Y-%m-%d %H:%M")
            log.warning(
                "job %s missed %d scheduled run(s), the latest at %s: not run at the time and past the grace "
                "of %d s. To run one now: branchbot jobs run %s --at \"%s\"",
                name,
                len(recorded),
                latest,
                grace,
                name,
                latest,
            )
        return recorded

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
            scheduler.add_job(
                self._fire,
                spec.trigger(self.config),
                args=[name],
                id=name,
                name=spec.title,
                misfire_grace_time=self.grace(name) or None,
                coalesce=True,
                max_instances=1,
            )
        # Live contests move on every few seconds; each step is claimed in the store.
        scheduler.add_job(
            self._tick_contests,
            "interval",
            seconds=5,
            id="contest_tick",
            name="抢答赛计时",
            coalesce=True,
            max_instances=1,
        )
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
