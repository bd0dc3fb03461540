"""积分: this month's and total points, and where the member stands in the branch."""

from __future__ import annotations

from bot.router import MemberContext
from quizzes.standings import member_points, month_rank, total_rank


def show(ctx: MemberContext) -> str:
    member = ctx.member
    this_month, total = member_points(ctx.db, ctx.member_id, ctx.month)
    month_place, _, _ = month_rank(ctx.db, ctx.month, ctx.member_id, member.branch_id)
    total_place, ranked, _ = total_rank(ctx.db, ctx.member_id, member.branch_id)
    lines = [f"{member.name}同志的积分：", f"本月积分：{this_month} 分"]
    if month_place:
        lines.append(f"本月测试：已完成，支部第 {month_place} 名")
    else:
        lines.append("本月测试：尚未完成，发送「答题」参加")
    lines.append(
        f"累计积分：{total} 分" + (f"，支部第 {total_place} 名（共 {ranked} 人有积分）" if total_place else "")
    )
    return "\n".join(lines)
