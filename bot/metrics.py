"""Prometheus metrics for /metrics: per-process counters of messages and handler time, and
store-wide gauges read at scrape time (so every instance on one database agrees)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric

from bot.store import Store

log = logging.getLogger("branchbot.metrics")


class StoreCollector:
    """Deliveries by status and errcode, and job runs by status, read from the store at
    scrape time: every instance on one database reports the same totals. A job's
    occurrences that were never run (down at the time, past the grace on restart) are
    its ``status="missed"`` runs; each job that has any run reports that series, 0 when
    nothing was missed, so an alert can watch it from the start."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import func
        from sqlmodel import col, select

        from bot.store.models import Delivery, JobRun

        deliveries = GaugeMetricFamily(
            "branchbot_deliveries", "Deliveries by status and WeChat errcode", labels=["status", "errcode"]
        )
        jobs = GaugeMetricFamily(
            "branchbot_job_runs", "Scheduled job runs recorded in the store", labels=["job", "status"]
        )
        try:
            with self.store.session() as db:
                for status, errcode, count in db.exec(
                    select(col(Delivery.status), col(Delivery.errcode), func.count(col(Delivery.id))).group_by(
                        col(Delivery.status), col(Delivery.errcode)
                    )
                ).all():
                    deliveries.add_metric([status, "" if errcode is None else str(errcode)], count)
                seen: dict[str, set[str]] = {}
                for job, status, count in db.exec(
                    select(col(JobRun.job), col(JobRun.status), func.count(col(JobRun.id))).group_by(
                        col(JobRun.job), col(JobRun.status)
                    )
                ).all():
                    jobs.add_metric([job, status], count)
                    seen.setdefault(job, set()).add(status)
                for job, statuses in sorted(seen.items()):
                    if "missed" not in statuses:
                        jobs.add_metric([job, "missed"], 0)
        except Exception:
            log.exception("metrics: store unavailable")
        yield deliveries
        yield jobs


class Metrics:
    """One registry per app, so two apps in one process (tests, workers) never share counters."""

    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry()
        if store is not None:
            self.registry.register(StoreCollector(store))
        self.messages = Counter(
            "branchbot_messages",
            "Inbound messages by channel, kind and outcome",
            ["channel", "kind", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "branchbot_handler_seconds",
            "Time to build a reply",
            ["channel"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
