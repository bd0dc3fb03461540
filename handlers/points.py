"""积分: this month's and total points, and where the member stands in the branch."""

from __future__ import annotations

from bot.router import MemberContext
from bot.store import hot


def show(ctx: MemberContext) -> str:
    member = ctx.member
    card = hot.points_card(ctx.db, ctx.member_id, member.branch_id, ctx.month)  # one read
    lines = [f"{member.name}同志的积分：", f"本月积分：{card.month_points} 分"]
    if card.month_place:
        lines.append(f"本月测试：已完成，支部第 {card.month_place} 名")
    else:
        lines.append("本月测试：尚未完成，发送「答题」参加")
    total_place = card.total_place
    lines.append(
        f"累计积分：{card.total_points} 分"
        + (f"，支部第 {total_place} 名（共 {card.ranked} 人有积分）" if total_place else "")
    )
    return "\n".join(lines)
