"""通知: notices that could not be pushed (the Official Account's 48-hour window was
closed and no template is configured) wait in the member's unread inbox."""

from __future__ import annotations

from sqlmodel import select

from bot.router import Context
from bot.store import lookups
from bot.store.models import Campaign, Delivery

SHOWN = 5


def _unread(ctx: Context):
    assert ctx.member is not None
    return (Delivery.member_id == ctx.member.id, Delivery.status == "inbox", Delivery.read_at.is_(None))  # type: ignore[union-attr]


def unread_banner(ctx: Context) -> str:
    """Put in front of any reply while the member has unread notices."""
    if ctx.member is None:
        return ""
    assert ctx.member.id is not None
    count = lookups.unread_count(ctx.db, ctx.member.id)
    return f"您有 {count} 条未读通知，发送「通知」查看。" if count else ""


def show_inbox(ctx: Context) -> str:
    rows = ctx.db.exec(
        select(Delivery, Campaign)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(*_unread(ctx))
        .order_by(Delivery.id)
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
