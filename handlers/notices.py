"""通知: notices that could not be pushed (the Official Account's 48-hour window was
closed and no template is configured) wait in the member's unread inbox."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.router import MemberContext
from bot.store import lookups
from bot.store.models import Campaign, Delivery, DeliveryStatus

SHOWN = 5


def _unread(ctx: MemberContext) -> tuple[Any, ...]:
    return (
        col(Delivery.member_id) == ctx.member_id,
        col(Delivery.status) == DeliveryStatus.INBOX,
        col(Delivery.read_at).is_(None),
    )


def unread_banner(ctx: MemberContext) -> str:
    """Put in front of any reply while the member has unread notices."""
    count = lookups.unread_count(ctx.db, ctx.member_id)
    return f"您有 {count} 条未读通知，发送「通知」查看。" if count else ""


def show_inbox(ctx: MemberContext) -> str:
    """通知 alone: the unread inbox, oldest first, marked read as it is shown."""
    rows = ctx.db.exec(
        select(Delivery, Campaign)
        .join(Campaign, col(Campaign.id) == col(Delivery.campaign_id))
        .where(*_unread(ctx))
        .order_by(col(Delivery.id))
    ).all()
    if not rows:
        return "暂无未读通知。"
    lines = [
        f"未读通知 {len(rows)} 条：" if len(rows) <= SHOWN else f"未读通知 {len(rows)} 条，先显示最早的 {SHOWN} 条："
    ]
    for delivery, campaign in rows[:SHOWN]:
        when = campaign.created_at.astimezone(ctx.config.tz).strftime("%m月%d日")
        head = f"【{campaign.title}】" if campaign.title else ""
        lines.append(f"· {when} {head}{campaign.text}")
        delivery.read_at = ctx.now
        ctx.db.add(delivery)
    if len(rows) > SHOWN:
        lines.append("再发「通知」查看其余通知。")
    return "\n".join(lines)
