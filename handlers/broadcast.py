"""通知 / 定时通知 / 通知状态 / 取消定时: a secretary's broadcast to the branch.

Every broadcast is previewed with its recipient count and sent only on 确认; the
preview waits 10 minutes and says so when a late 确认 arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.audit import actor_of
from bot.dialogs import DialogState
from bot.errcodes import failure_text
from bot.outbox.campaigns import (
    delivery_groups,
    reach,
    schedule_problem,
    send_notice,
    text_problem,
    visible_campaign,
    withdraw,
)
from bot.router import SECRETARIES, MemberContext
from bot.scope import scope_branch_ids
from bot.store import Branch, Role
from bot.store.models import Campaign, DeliveryStatus, Dialog
from handlers.listing import names

DIALOG = "broadcast"
CONFIRM_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class NoticeDraft(DialogState):
    """A previewed notice waiting for 确认: its text, recipients' branches, and send time (None: now)."""

    text: str
    branch_ids: list[int]
    target: str
    when: datetime | None = None


def notice(ctx: MemberContext) -> str:
    """通知 内容: a broadcast to the branches of the router's scope, previewed first."""
    return _preview(ctx, ctx.args, None)


def scheduled_notice(ctx: MemberContext) -> str:
    parts = ctx.args.split(" ", 2)
    if len(parts) < 3:
        return "定时通知格式：定时通知 2026-12-01 09:00 通知内容"
    try:
        when = datetime.strptime(f"{parts[0]} {parts[1]}", "%Y-%m-%d %H:%M").replace(tzinfo=ctx.config.tz)
    except ValueError:
        return f"时间「{parts[0]} {parts[1]}」格式不对，应为 YYYY-MM-DD HH:MM，如 2026-12-01 09:00。"
    problem = schedule_problem(when, ctx.now)
    if problem:
        return problem
    return _preview(ctx, parts[2], when)


def _target(ctx: MemberContext) -> tuple[list[int], str]:
    """(the branch ids the router's scope gives this notice, their name for people)."""
    branch_ids = scope_branch_ids(ctx.db, ctx.scope)
    if len(branch_ids) > 1:
        return branch_ids, "全部支部"
    branch = ctx.db.get(Branch, branch_ids[0]) if branch_ids else None
    return branch_ids, branch.name if branch else "本支部"


def _preview(ctx: MemberContext, text: str, when: datetime | None) -> str:
    content = text.strip()
    if not content:
        return "请在「通知」后写上通知内容。" + (
            "管理员可写「通知 支部名 内容」或「通知 全部 内容」。" if ctx.member.role == Role.ADMIN.value else ""
        )
    problem = text_problem(content)
    if problem:
        return problem
    branch_ids, target = _target(ctx)
    audience = reach(ctx.db, branch_ids)
    ctx.start_dialog(DIALOG, NoticeDraft(content, branch_ids, target, when), expires_at=ctx.now + CONFIRM_WINDOW)
    timing = f"将于 {when:%Y-%m-%d %H:%M} 发送给" if when else "即将发送给"
    return (
        f"{timing}{target}：\n——\n{content}\n——\n"
        f"收件人 {audience.count} 人（已绑定 {audience.bound} 人，未绑定 {audience.unbound} 人收不到）。\n"
        "回复「确认」发送，回复「取消」放弃（10 分钟内有效）。"
    )


def confirm(ctx: MemberContext, dialog: Dialog) -> str | None:
    word = ctx.args.strip()
    if word not in ("确认", "取消"):
        return None
    ctx.end_dialog()
    if word == "取消":
        return "已取消，通知没有发送。"
    draft = NoticeDraft.load(dialog.data)
    # The role was checked at 「通知」; the router read it again from the store for this
    # message: a secretary demoted or moved to another branch within the 10 minutes sends nothing.
    if ctx.role not in SECRETARIES or not ctx.scope.covers(draft.branch_ids):
        return "您的角色或所在支部已变更，这条通知没有发送。"
    campaign, _ = send_notice(
        ctx.db,
        ctx.now,
        text=draft.text,
        branch_ids=draft.branch_ids,
        target=draft.target,
        actor=actor_of(ctx.member),
        sender=ctx.member,
        when=draft.when,
    )
    if draft.when:
        return f"已安排定时通知 #{campaign.id}，将于 {draft.when:%Y-%m-%d %H:%M} 发送。如需撤回，发送「取消定时 {campaign.id}」。"
    return f"已发送，通知编号 #{campaign.id}。稍后发送「通知状态 {campaign.id}」查看送达情况。"


def confirm_hint(ctx: MemberContext, dialog: Dialog) -> str:
    return "有一条通知等待确认：回复「确认」发送，或回复「取消」放弃。"


def expired(ctx: MemberContext, dialog: Dialog) -> str | None:
    if ctx.args.strip() in ("确认", "取消"):
        return "这条通知超过 10 分钟没有确认，已自动作废，没有发送。如需发送，请重新发「通知 内容」。"
    return None


def _visible_campaign(ctx: MemberContext, number: int | None) -> Campaign | None:
    """A notice within the router's scope (a secretary's branch; every branch for an admin)."""
    scope = None if ctx.scope.branch_ids is None else list(ctx.scope.branch_ids)
    return visible_campaign(ctx.db, scope, number)


def status(ctx: MemberContext) -> str:
    arg = ctx.args.strip().lstrip("#")
    if arg and not arg.isdigit():
        return "用法：通知状态 或 通知状态 编号"
    campaign = _visible_campaign(ctx, int(arg) if arg else None)
    if campaign is None:
        return f"没有找到通知 #{arg}（只能查看本支部的通知）。" if arg else "本支部还没有发过通知。"
    total, by = delivery_groups(ctx.db, campaign)
    when = (campaign.send_after or campaign.created_at).astimezone(ctx.config.tz)
    branch = ctx.db.get(Branch, campaign.branch_id) if campaign.branch_id else None
    lines = [
        f"通知 #{campaign.id}（{when:%m月%d日 %H:%M}，{branch.name if branch else '全部支部'}）共 {total} 人：",
        f"已送达 {len(by.get(DeliveryStatus.SENT, []))} 人",
    ]
    if campaign.cancelled_at:
        lines.insert(1, "该定时通知已撤回。")
    elif campaign.send_after and campaign.send_after > ctx.now:
        lines.insert(1, "定时通知，尚未到发送时间。")
    if failed := by.get(DeliveryStatus.FAILED):
        lines.append(
            f"发送失败 {len(failed)} 人："
            + "；".join(f"{m.name}（{failure_text(d.errcode, d.errmsg)}）" for d, m in failed[:20])
        )
    if inbox := by.get(DeliveryStatus.INBOX):
        lines.append(
            f"存入未读通知 {len(inbox)} 人（超过 48 小时未与公众号互动，下次发消息时会看到）：{names([m for _, m in inbox])}"
        )
    if unbound := by.get("unbound"):
        lines.append(f"未绑定、收不到 {len(unbound)} 人：{names([m for _, m in unbound])}")
    if other := by.get(DeliveryStatus.SKIPPED):
        lines.append(
            f"跳过 {len(other)} 人：" + "；".join(f"{m.name}（{d.errmsg or '已取消关注'}）" for d, m in other[:20])
        )
    waiting = by.get(DeliveryStatus.PENDING, []) + by.get(DeliveryStatus.SENDING, [])
    if waiting:
        lines.append(f"等待发送 {len(waiting)} 人")
    return "\n".join(lines)


def cancel_scheduled(ctx: MemberContext) -> str:
    arg = ctx.args.strip().lstrip("#")
    if not arg.isdigit():
        return "用法：取消定时 编号"
    campaign = _visible_campaign(ctx, int(arg))
    if campaign is None or campaign.send_after is None:
        return f"没有找到定时通知 #{arg}（只能撤回本支部的定时通知）。"
    problem = withdraw(ctx.db, ctx.now, campaign, actor_of(ctx.member))
    if problem:
        return problem
    return f"已撤回定时通知 #{arg}，不会发送。"
