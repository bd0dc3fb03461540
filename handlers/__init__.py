"""What the bot can do: the registry below is its table of contents.

Each command declares who may use it, and whether its arguments may name a branch; the
router enforces both in one place (``bot.router``, ``bot.scope``).
"""

from __future__ import annotations

from bot.router import ADMINS, MEMBERS, SECRETARIES, Args, Registry
from bot.scope import BranchParam
from handlers import (
    broadcast,
    console_link,
    contest,
    followup,
    help,
    leaderboard,
    meetings,
    members,
    notices,
    oath,
    points,
    practice,
    questions,
    quiz,
    review,
)


def build_registry() -> Registry:
    bot = Registry()

    # Getting started
    bot.open_command("帮助", help.show_help, summary="查看功能", aliases=("help", "菜单", "?", "？"))
    bot.open_command("绑定", members.bind, summary="绑定支部名册身份", usage="绑定 姓名 手机号后四位")
    bot.event("subscribe", members.welcome)
    bot.event("subscribe_scan", members.welcome)
    bot.event("unsubscribe", members.unsubscribe)

    # The monthly quiz
    bot.command(
        "答题",
        quiz.start,
        roles=MEMBERS,
        summary="参加本月党史党纪知识测试（可中途继续）",
        aliases=("测试", "开始答题", "继续答题"),
    )
    bot.dialog(quiz.DIALOG, on_reply=quiz.answer, hint=quiz.hint)

    # Study between tests: practice, challenge, the wrong-answer book
    bot.command(
        "练习",
        practice.start_practice,
        roles=MEMBERS,
        summary="随时练习，可指定分类",
        usage="练习 [党史|党章|党纪|廉洁]",
    )
    bot.dialog(practice.PRACTICE, on_reply=practice.practice_reply, hint=practice.practice_hint)
    bot.command("挑战", practice.start_challenge, roles=MEMBERS, summary="连续答题，答错即止")
    bot.dialog(practice.CHALLENGE, on_reply=practice.challenge_reply, hint=practice.challenge_hint)
    bot.command("错题", review.book, roles=MEMBERS, summary="错题本各分类题数", aliases=("错题本",))
    bot.command("复习", review.start, roles=MEMBERS, summary="复习今天到期的错题")
    bot.dialog(review.DIALOG, on_reply=review.reply, hint=review.hint)

    # The live contest (抢答赛)
    bot.command("抢答赛", contest.start, roles=SECRETARIES, summary="发起抢答赛（2 分钟报名）", usage="抢答赛 [题数]")
    bot.command("参赛", contest.join, roles=MEMBERS, summary="报名参加抢答赛")
    bot.dialog(contest.DIALOG, on_reply=contest.answer, hint=contest.hint)

    # Question quality
    bot.command("纠错", questions.report, roles=MEMBERS, summary="刚答的题有错误？告诉管理员", usage="纠错 内容")
    bot.command("纠错列表", questions.reports, roles=ADMINS, summary="查看纠错反馈")
    bot.command("题目统计", questions.hardest, roles=ADMINS, summary="最难的 10 道题")

    # Points and standings
    bot.command("积分", points.show, roles=MEMBERS, summary="查看本月和累计积分、支部排名", aliases=("我的积分",))
    bot.command(
        "排行榜",
        leaderboard.show,
        roles=MEMBERS,
        summary="本月、累计或各支部排行",
        usage="排行榜 [本月|总|支部]",
        aliases=("排名", "榜单"),
    )

    # Political birthdays
    bot.open_command("誓词", oath.show, summary="重温入党誓词", aliases=("入党誓词",))

    # Notices: 通知 alone reads the unread inbox; 通知 with text is a broadcast (an admin
    # may name a branch or 全部 first)
    bot.command(
        "通知", notices.show_inbox, roles=MEMBERS, summary="查看未读通知", args=Args.NONE, aliases=("未读通知",)
    )
    bot.command(
        "通知",
        broadcast.notice,
        roles=SECRETARIES,
        summary="预览后确认，发给全支部",
        usage="通知 内容",
        args=Args.REQUIRED,
        branch=BranchParam(allow_all=True),
    )
    bot.dialog(broadcast.DIALOG, on_reply=broadcast.confirm, hint=broadcast.confirm_hint, on_expired=broadcast.expired)
    bot.command(
        "定时通知",
        broadcast.scheduled_notice,
        roles=SECRETARIES,
        summary="定时发送通知",
        usage="定时通知 YYYY-MM-DD HH:MM 内容",
        branch=BranchParam(position=2, allow_all=True),
    )
    bot.command(
        "取消定时", broadcast.cancel_scheduled, roles=SECRETARIES, summary="撤回定时通知", usage="取消定时 编号"
    )
    bot.command("通知状态", broadcast.status, roles=SECRETARIES, summary="通知送达情况", usage="通知状态 [编号]")
    bot.banner = notices.unread_banner

    # Following up the month's quiz, and political birthdays
    branch = BranchParam()  # an admin may name the branch: 催办 第二党支部
    bot.command("未完成", followup.unfinished, roles=SECRETARIES, summary="本月未完成测试和未绑定的同志", branch=branch)
    bot.command("催办", followup.nudge, roles=SECRETARIES, summary="提醒未完成测试的同志（每天一次）", branch=branch)
    bot.command(
        "生日", followup.birthdays, roles=SECRETARIES, summary="本月政治生日", aliases=("政治生日",), branch=branch
    )

    # Meetings (三会一课, 主题党日): arrange, reply, check in
    bot.command("会议", meetings.start, roles=SECRETARIES, summary="安排会议并通知全支部", aliases=("安排会议",))
    bot.dialog(meetings.DIALOG, on_reply=meetings.step, hint=meetings.hint, on_expired=meetings.expired)
    bot.command("会议情况", meetings.report, roles=SECRETARIES, summary="会议回复和签到情况")
    bot.command("签到码", meetings.checkin_code, roles=SECRETARIES, summary="生成 30 分钟有效的签到码")
    bot.command("参加", meetings.attend, roles=MEMBERS, summary="回复会议通知：参加")
    bot.command("请假", meetings.leave, roles=MEMBERS, summary="回复会议通知：请假", usage="请假 理由")
    bot.command("签到", meetings.check_in, roles=MEMBERS, summary="会议签到", usage="签到 签到码")
    # The 扫码签到 menu button (key CHECKIN_SCAN) scans the meeting's QR code
    bot.scan_command = meetings.command_for_scan
    bot.event("scancode_waitmsg", meetings.scan_button)
    bot.event("scancode_push", meetings.scan_button)
    for photo in ("pic_sysphoto", "pic_photo_or_album", "pic_weixin"):
        bot.event(photo, members.photo_button)
    bot.event("location_select", members.location_button)

    # The web console (管理后台)
    bot.command(
        "后台",
        console_link.link,
        roles=SECRETARIES,
        summary="获取管理后台登录链接（10 分钟有效）",
        aliases=("管理后台",),
    )

    # Menu buttons send these keys
    bot.menu("QUIZ", "答题")
    bot.menu("POINTS", "积分")
    bot.menu("RANK", "排行榜")
    bot.menu("HELP", "帮助")
    bot.menu("PRACTICE", "练习")
    bot.menu("REVIEW", "错题")
    # The scan itself reaches meetings.scan_button (above); the key is registered too, so that
    # `branchbot menu push` knows it, and a plain click on it asks for the code.
    bot.menu("CHECKIN_SCAN", "签到")

    bot.unsupported = members.unsupported
    bot.fallback = quiz.stray_answer
    return bot
