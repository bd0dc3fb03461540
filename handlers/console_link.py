"""后台: a secretary's or admin's one-time link into the web console."""

from __future__ import annotations

from bot.audit import actor_of, record
from bot.auth import issue_link_token, may_use
from bot.messages import secret
from bot.router import MemberContext


def link(ctx: MemberContext) -> str:
    if not ctx.config.console.enabled:
        return "管理后台未启用，请联系系统管理员。"
    if not may_use(ctx.member):
        record(ctx.db, ctx.now, actor_of(ctx.member), "拒绝", "已转出人员申请管理后台链接")
        return "管理后台仅限在册的支部书记和管理员使用。"
    token = issue_link_token(ctx.db, ctx.member, ctx.now)
    record(ctx.db, ctx.now, actor_of(ctx.member), "后台链接", "签发一次性登录链接")
    url = secret(f"{ctx.config.console_base_url}/console/login?token={token}")
    return f"管理后台登录链接（10 分钟内有效，只能使用一次，请勿转发）：\n{url}"
