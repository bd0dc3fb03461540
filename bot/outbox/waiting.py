"""What the outbox is waiting to retry, per campaign: for ``outbox status``.

A delivery that failed for a reason that may pass stays ``pending`` with the time of
its next try (``next_attempt_at``) and of its first failure (``failing_since``); the
worker gives up ``outbox.retry_window`` after that first failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from bot.store.models import Campaign, Delivery


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
    rows = db.exec(
        select(
            Campaign.id,
            Campaign.kind,
            Campaign.title,
            Campaign.text,
            func.count(Delivery.id),
            func.min(Delivery.next_attempt_at),
            func.min(Delivery.failing_since),
        )
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.status == "pending", Delivery.failing_since.is_not(None))  # type: ignore[union-attr]
        .group_by(Campaign.id, Campaign.kind, Campaign.title, Campaign.text)
        .order_by(Campaign.id)
    ).all()
    found = []
    for campaign_id, kind, title, text, count, next_try, first_failure in rows:
        errcode, errmsg = db.exec(
            select(Delivery.errcode, Delivery.errmsg)
            .where(
                Delivery.campaign_id == campaign_id, Delivery.status == "pending", Delivery.failing_since.is_not(None)
            )  # type: ignore[union-attr]
            .group_by(Delivery.errcode, Delivery.errmsg)
            .order_by(func.count(Delivery.id).desc())
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
