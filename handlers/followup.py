"""未完成 / 催办 / 生日: a secretary's follow-up of the month's quiz and birthdays."""

from __future__ import annotations

import calendar

from sqlmodel import col, select

from bot.audit import actor_of, record
from bot.outbox.campaigns import create_campaign
from bot.router import MemberContext
from bot.store import Attempt, Branch, Member
from bot.store.members import branch_members, reachable
from bot.store.models import Campaign, saved_id
from handlers.listing import names
from scheduler.dates import birthday_lines


def _branch(ctx: MemberContext) -> tuple[int, str]:
    """(the branch the router scoped this command to, its name)."""
    branch = ctx.db.get(Branch, ctx.scope.branch_id)
    return ctx.scope.branch_id, branch.name if branch else "本支部"


def _unfinished(ctx: MemberContext, branch_id: int) -> tuple[list[Member], list[Member], list[Member]]:
    members = branch_members(ctx.db, [branch_id])
    done = set(
        ctx.db.exec(
            select(Attempt.member_id).where(
                Attempt.month == ctx.month,
                Attempt.branch_id == branch_id,
                col(Attempt.finished_at).is_not(None),
            )
        ).all()
    )
    waiting = [m for m in members if m.id not in done]
    return members, [m for m in waiting if reachable(m)], [m for m in waiting if not reachable(m)]


def unfinished(ctx: MemberContext) -> str:
    branch_id, branch_name = _branch(ctx)
    members, bound, unbound = _unfinished(ctx, branch_id)
    if not bound and not unbound:
        return f"{branch_name}全部 {len(members)} 人已完成本月测试。"
    lines = [f"{branch_name}本月测试：已完成 {len(members) - len(bound) - len(unbound)}/{len(members)} 人。"]
    if bound:
        lines.append(f"未完成 {len(bound)} 人：{names(bound, 40)}")
    if unbound:
        lines.append(
            f"未绑定 {len(unbound)} 人（收不到提醒，请提醒其发送「绑定 姓名 手机号后四位」）：{names(unbound, 40)}"
        )
    if bound:
        lines.append("发送「催办」向未完成的同志推送提醒（每个支部每天一次）。")
    return "\n".join(lines)


def nudge(ctx: MemberContext) -> str:
    branch_id, branch_name = _branch(ctx)
    start_of_day = ctx.now.replace(hour=0, minute=0, second=0, microsecond=0)
    already = ctx.db.exec(
        select(Campaign).where(
            Campaign.kind == "nudge", Campaign.branch_id == branch_id, Campaign.created_at >= start_of_day
        )
    ).first()
    if already:
        return f"{branch_name}今天已经催办过了（{already.created_at.astimezone(ctx.config.tz):%H:%M}），请明天再催。"
    _, bound, unbound = _unfinished(ctx, branch_id)
    if not bound:
        return "本月测试没有需要催办的同志。" + (f"另有 {len(unbound)} 人未绑定，收不到提醒。" if unbound else "")
    last_day = calendar.monthrange(ctx.now.year, ctx.now.month)[1]
    text = f"本月党史党纪知识测试还有 {last_day - ctx.now.day} 天截止，您还没有完成。回复“答题”继续，几分钟就能答完。"
    campaign = create_campaign(
        ctx.db,
        kind="nudge",
        title="测试提醒",
        text=text,
        member_ids=[saved_id(m.id) for m in bound],
        now=ctx.now,
        branch_id=branch_id,
        created_by=ctx.member_id,
    )
    ctx.db.flush()
    record(ctx.db, ctx.now, actor_of(ctx.member), "催办", f"#{campaign.id} {branch_name}：{len(bound)} 人")
    tail = f"另有 {len(unbound)} 人未绑定，收不到提醒。" if unbound else ""
    return f"已向 {len(bound)} 位未完成的同志推送提醒（通知 #{campaign.id}）。{tail}"


def birthdays(ctx: MemberContext) -> str:
    branch_id, branch_name = _branch(ctx)
    month = ctx.now.month
    found = birthday_lines(branch_members(ctx.db, [branch_id]), ctx.now.year, month)
    if not found:
        return f"{branch_name}本月没有同志过政治生日。"
    return f"{branch_name}{month}月政治生日（共 {len(found)} 人）：\n" + "\n".join(found)
