"""排行榜 [本月|总|支部]: the top 10 of the router's scope (the member's branch; every
branch for an admin)."""

from __future__ import annotations

from bot.router import MemberContext
from bot.store import Branch, hot
from bot.store.hot import Standing
from quizzes.standings import branch_board

TOP = 10
SCOPES = {
    "": "本月",
    "本月": "本月",
    "月": "本月",
    "总": "总",
    "总榜": "总",
    "累计": "总",
    "全部": "总",
    "支部": "支部",
}


def show(ctx: MemberContext) -> str:
    scope = SCOPES.get(ctx.args.replace(" ", ""))
    if scope is None:
        return "排行榜用法：「排行榜」或「排行榜 本月」看本月测试，「排行榜 总」看累计积分，「排行榜 支部」看各支部参与情况。"
    if scope == "支部":
        return _branches(ctx)
    everything = ctx.scope.everything
    branch_id = None if everything else ctx.scope.branch_id
    branch = ctx.db.get(Branch, ctx.scope.branch_id)
    where = "全部支部" if everything else (branch.name if branch else "本支部")
    if scope == "本月":
        rows = hot.month_top(ctx.db, ctx.month, branch_id, TOP)
        place = hot.month_place(ctx.db, ctx.month, ctx.member_id, branch_id)
        title = f"📊 {ctx.now.year}年{ctx.now.month}月测试排行榜（{where}）"
        empty = "本月还没有人完成测试，发送「答题」争当第一名！"
    else:
        rows = hot.total_top(ctx.db, branch_id, TOP)
        place = hot.total_place(ctx.db, ctx.member_id, branch_id)
        title = f"📊 累计积分排行榜（{where}）"
        empty = "还没有人获得积分，发送「答题」开始吧！"
    if not rows:
        return f"{title}\n{empty}"
    lines = [title] + [_line(i, row, everything) for i, row in enumerate(rows, start=1)]
    if place.place is None:
        lines.append("您暂未上榜" + ("，发送「答题」参加本月测试。" if scope == "本月" else "。"))
    else:
        lines.append(f"您排第 {place.place} 名，{place.points} 分（共 {place.count} 人）。")
    return "\n".join(lines)


def _line(rank: int, row: Standing, with_branch: bool) -> str:
    suffix = f"（{row.branch}）" if with_branch else ""
    return f"{rank}. {row.name}{suffix} {row.points} 分"


def _branches(ctx: MemberContext) -> str:
    rows = branch_board(ctx.db, ctx.month)
    if not ctx.scope.everything:
        own = next((r for r in rows if r.branch_id == ctx.scope.branch_id), None)
        if own is None:
            return "暂无本支部的统计。"
        return (
            f"{own.name}本月测试：已完成 {own.finished}/{own.members} 人（参与率 {own.participation:.0%}），"
            f"平均 {own.average:.1f} 分。各支部排名由管理员查看。"
        )
    lines = [f"📊 {ctx.now.year}年{ctx.now.month}月各支部测试情况（按参与率、平均分排序）"]
    for i, row in enumerate(rows, start=1):
        lines.append(
            f"{i}. {row.name}：参与率 {row.participation:.0%}（{row.finished}/{row.members}），平均 {row.average:.1f} 分"
        )
    return "\n".join(lines)
