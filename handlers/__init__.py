"""What the bot can do: the registry below is its table of contents.

Each command declares who may use it; the router enforces that in one place.
"""

from __future__ import annotations

from bot.router import EVERYONE, MEMBERS, Registry
from handlers import help, leaderboard, members, notices, oath, points, quiz


def build_registry() -> Registry:
    bot = Registry()

    # Getting started
    bot.command("帮助", help.show_help, roles=EVERYONE, summary="查看功能", aliases=("help", "菜单", "?", "？"))
    bot.command("绑定", members.bind, roles=EVERYONE, summary="绑定支部名册身份", usage="绑定 姓名 手机号后四位")
    bot.event("subscribe", members.welcome)
    bot.event("subscribe_scan", members.welcome)
    bot.event("unsubscribe", members.unsubscribe)

    # The monthly quiz
    bot.command("答题", quiz.start, roles=MEMBERS, summary="参加本月党史党纪知识测试（可中途继续）",
                aliases=("测试", "开始答题", "继续答题"))
    bot.dialog(quiz.DIALOG, on_reply=quiz.answer, hint=quiz.hint)

    # Points and standings
    bot.command("积分", points.show, roles=MEMBERS, summary="查看本月和累计积分、支部排名", aliases=("我的积分",))
    bot.command("排行榜", leaderboard.show, roles=MEMBERS, summary="本月、累计或各支部排行",
                usage="排行榜 [本月|总|支部]", aliases=("排名", "榜单"))

    # Political birthdays
    bot.command("誓词", oath.show, roles=EVERYONE, summary="重温入党誓词", aliases=("入党誓词",))

    # Notices that could not be pushed wait here
    bot.command("通知", notices.show_inbox, roles=MEMBERS, summary="查看未读通知", aliases=("未读通知",))
    bot.banner = notices.unread_banner

    # Menu buttons send these keys
    bot.menu("QUIZ", "答题")
    bot.menu("POINTS", "积分")
    bot.menu("RANK", "排行榜")
    bot.menu("HELP", "帮助")

    bot.unsupported = members.unsupported
    return bot
