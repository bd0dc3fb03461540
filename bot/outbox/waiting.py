"""What the outbox is waiting to retry, per campaign: for ``outbox status``.

A delivery that failed for a reason that may pass stays ``pending`` with the time of
its next try (``next_attempt_at``) and of its first failure (``failing_since``); the
worker gives up ``outbox.retry_window`` after that first failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bot.store.models import Campaign, Delivery, DeliveryStatus


@dataclass(frozen=True)
class Waiting:
    campaign_id: int
    kind: str
    title: str
    deliveries: int
    next_try: datetime  # the earliest next try among them
    give_up_at: datetime  # the earliest first failure plus the retry window
    errcode: int | None  # the most common latest error among them
    errmsg: str


def waiting_to_retry(db: Session, retry_window: float) -> list[Waiting]:
    rows = db.execute(  # Core select and execute: sqlmodel's select is typed for up to 4 columns
        sa_select(
            col(Campaign.id),
            col(Campaign.kind),
            col(Campaign.title),
            col(Campaign.text),
            func.count(col(Delivery.id)),
            func.min(col(Delivery.next_attempt_at)),
            func.min(col(Delivery.failing_since)),
        )
        .join(Campaign, col(Campaign.id) == Delivery.campaign_id)
        .where(col(Delivery.status) == DeliveryStatus.PENDING, col(Delivery.failing_since).is_not(None))
        .group_by(col(Campaign.id), col(Campaign.kind), col(Campaign.title), col(Campaign.text))
        .order_by(col(Campaign.id))
    ).all()
    found = []
    for campaign_id, kind, title, text, count, next_try, first_failure in rows:
        errcode, errmsg = db.exec(
            select(col(Delivery.errcode), col(Delivery.errmsg))
            .where(
                col(Delivery.campaign_id) == campaign_id,
                col(Delivery.status) == DeliveryStatus.PENDING,
                col(Delivery.failing_since).is_not(None),
            )
            .group_by(col(Delivery.errcode), col(Delivery.errmsg))
            .order_by(func.count(col(Delivery.id)).desc())
            .limit(1)
        ).one()
        found.append(
            Waiting(
                campaign_id,
                kind,
                title or text[:16],
                count,
                next_try or first_failure,
                first_failure + timedelta(seconds=retry_window),
                errcode,
                errmsg,
            )
        )
    return found
