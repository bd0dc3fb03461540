"""The loopback demo channel: pushes to demo members delivered into the simulator.

The shipped demo has no WeChat credentials, so without this a secretary's 通知, the
monthly quiz push and the greetings would all fail with 「未配置公众号」 and the demo
would hide the push half of the product. Where the simulator is on and neither the
Official Account nor the WeCom app is configured, the outbox routes a reachable demo
member's delivery here instead of to a platform sender. Everything else is the real
path: the campaign, the ledger row, the claim and lease, the statuses and 通知状态.

A delivery this channel accepts is marked ``sent`` with ``via = "demo"``; that ledger
row (with its campaign's title and text) *is* the stored push, and the simulator page
reads it back through :func:`pushes`. Nothing is sent anywhere else. Real members,
and every member once real credentials are set, go to the real senders as before.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from bot.config import Config
from bot.outbox.senders import Outcome, Outgoing
from bot.store import Member
from bot.store.members import reachable
from bot.store.models import Campaign, Delivery, DeliveryStatus

VIA = "demo"
# Marks from concurrent workers commit in any order, so a reader asking "what is new since
# my cursor" looks this far behind it and drops what it has already shown (by delivery id).
OVERLAP = timedelta(seconds=60)
FIRST_PAGE = 200


def demo_active(config: Config) -> bool:
    """The simulator is on and no real platform credentials are set."""
    wechat, wecom = config.wechat, config.wecom
    real = bool(wechat.app_id and wechat.app_secret) or bool(wecom.corp_id and wecom.secret and wecom.agent_id)
    return config.simulator.enabled and not real


def takes(member: Member) -> bool:
    """Whether this channel carries a push to the member: a demo member a real platform
    could reach (a WeCom account, or a subscribed Official Account follower). Unbound
    demo members are skipped as 未绑定, exactly as in production."""
    return member.is_demo and reachable(member)


class DemoChannel:
    """The sender for the loopback channel: accepting the push is delivering it, because
    the simulator reads delivered pushes from the ledger."""

    via = VIA

    def send(self, item: Outgoing) -> Outcome:
        return Outcome(DeliveryStatus.SENT, VIA)


def pushes(db: Session, since: datetime | None, now: datetime, tz: Any) -> dict[str, Any]:
    """Demo pushes delivered since ``since`` (with overlap), oldest first, for the
    simulator page; ``cursor`` is what to pass as ``since`` next time."""
    query = (
        sa_select(  # Core select and execute: sqlmodel's select is typed for up to 4 columns
            col(Delivery.id),
            col(Delivery.member_id),
            col(Delivery.updated_at),
            col(Campaign.title),
            col(Campaign.text),
            col(Campaign.kind),
        )
        .join(Campaign, col(Campaign.id) == Delivery.campaign_id)
        .where(col(Delivery.via) == VIA, col(Delivery.status) == DeliveryStatus.SENT)
    )
    if since is not None:
        query = (
            query.where(col(Delivery.updated_at) >= since - OVERLAP)
            .order_by(col(Delivery.updated_at), col(Delivery.id))
            .limit(2000)
        )
        rows = list(db.execute(query).all())
    else:
        query = query.order_by(col(Delivery.updated_at).desc(), col(Delivery.id).desc()).limit(FIRST_PAGE)
        rows = list(reversed(db.execute(query).all()))
    cursor = max([since or now] + [r[2] for r in rows if r[2] is not None])
    return {
        "cursor": cursor.isoformat(),
        "pushes": [
            {
                "id": delivery_id,
                "member_id": member_id,
                "title": title,
                "text": text,
                "kind": kind,
                "at": updated_at.astimezone(tz).strftime("%m-%d %H:%M") if updated_at else "",
            }
            for delivery_id, member_id, updated_at, title, text, kind in rows
        ],
    }
