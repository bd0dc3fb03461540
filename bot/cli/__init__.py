"""The ``branchbot`` command. Every subcommand takes ``--config PATH``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from rich.markup import escape

from bot.cli.chat import cmd_chat
from bot.cli.common import CliError, err
from bot.cli.doctor import cmd_doctor
from bot.cli.members import cmd_members_grant, cmd_members_import, cmd_members_list, cmd_members_revoke
from bot.cli.menu import cmd_menu_push, cmd_menu_show
from bot.cli.ops import (
    cmd_calendar,
    cmd_db_backup,
    cmd_db_upgrade,
    cmd_jobs_list,
    cmd_jobs_run,
    cmd_outbox_run,
    cmd_outbox_status,
)
from bot.cli.parsing import EXPORT_KINDS, SCOPES, ChineseArgumentParser, aliases, positive_int, year
from bot.cli.quiz import cmd_quiz_import, cmd_quiz_validate
from bot.cli.reports import cmd_audit, cmd_broadcast, cmd_export, cmd_leaderboard
from bot.cli.serve import cmd_init, cmd_serve
from bot.config import Config, ConfigError, load_config
from bot.redact import setup_logging
from bot.store import Role
from bot.store.migrate import SchemaMismatch
from bot.tabular import FileProblem
from scheduler.calendar import unknown_festivals


def build_parser() -> argparse.ArgumentParser:
    # --config may come before or after the subcommand. The subcommands' copy defaults to
    # SUPPRESS so that, when absent there, it does not overwrite the value given before.
    config_help = "配置文件（默认 config.toml 或 $BRANCHBOT_CONFIG）"
    parser = ChineseArgumentParser(prog="branchbot", description="党支部学习助手")
    parser.add_argument("--config", metavar="PATH", default=None, help=config_help)
    common = ChineseArgumentParser(add_help=False)  # only a source of the shared option
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=config_help)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", parents=[common], help="创建或升级数据库并导入内置题库")
    p.add_argument("--demo", action="store_true", help="同时导入演示名册")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("serve", parents=[common], help="启动服务")
    p.add_argument("--workers", type=positive_int, metavar="N", help="服务进程数（默认 server.workers，即 1）")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("chat", parents=[common], help="在终端里以名册成员身份对话")
    p.add_argument("--as", dest="as_name", required=True, metavar="NAME")
    p.set_defaults(func=cmd_chat)

    members = sub.add_parser("members", parents=[common], help="名册").add_subparsers(dest="action", required=True)
    p = members.add_parser("import", parents=[common], help="导入名册（CSV 或 XLSX）；不在名册中的成员标记为已转出")
    p.add_argument("file")
    p.add_argument("--no-transfer", action="store_true", help="只导入部分成员：不在文件中的成员保持不变")
    p.set_defaults(func=cmd_members_import)
    p = members.add_parser("list", parents=[common], help="列出名册")
    p.add_argument("--branch", help="只看某个支部")
    p.set_defaults(func=cmd_members_list)
    roles = [r.value for r in Role]
    p = members.add_parser("grant", parents=[common], help="设置角色：党员、书记（本支部）或 管理员")
    p.add_argument("name", metavar="NAME")
    p.add_argument("role", metavar="ROLE", choices=roles, help="、".join(roles))
    p.add_argument("--phone", metavar="1234", help="重名时用手机号后四位指定")
    p.set_defaults(func=cmd_members_grant)
    p = members.add_parser("revoke", parents=[common], help="撤销书记或管理员角色，恢复为党员")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--phone", metavar="1234", help="重名时用手机号后四位指定")
    p.set_defaults(func=cmd_members_revoke)

    quiz = sub.add_parser("quiz", parents=[common], help="题库").add_subparsers(dest="action", required=True)
    p = quiz.add_parser("import", parents=[common], help="导入题库（CSV、XLSX 或 Word .docx，全部有效才导入）")
    p.add_argument("file")
    p.add_argument("--source", metavar="来源", help="文件中没有来源的题目统一使用的来源")
    p.add_argument("--category", metavar="分类", help="文件中没有分类的题目统一使用的分类")
    p.set_defaults(func=cmd_quiz_import)
    p = quiz.add_parser("validate", parents=[common], help="只检查题库文件，不导入；不给文件则检查内置题库")
    p.add_argument("file", nargs="?", help="题库文件；省略时检查内置题库（quizzes/bank/*.csv）")
    p.add_argument("--no-lint", action="store_true", help="跳过质量检查（答案出现在题干、选项长短悬殊、来源不具体等）")
    p.add_argument("--source", metavar="来源", help="文件中没有来源的题目统一使用的来源")
    p.add_argument("--category", metavar="分类", help="文件中没有分类的题目统一使用的分类")
    p.add_argument("--verbose", action="store_true", help="逐题列出将导入的题目（.docx 默认列出）")
    p.set_defaults(func=cmd_quiz_validate)

    p = sub.add_parser("leaderboard", parents=[common], help="排行榜")
    p.add_argument(
        "--scope",
        type=aliases("scope", SCOPES, "本月、总、支部"),
        default="month",
        metavar="本月|总|支部",
        help="本月（默认）、总（累计积分）或 支部（各支部参与率）；也接受 month / total / branches",
    )
    p.add_argument("--month", help="YYYY-MM，默认本月")
    p.add_argument("--branch", help="只看某个支部")
    p.add_argument("--top", type=positive_int, default=20, help="显示前几名（默认 20）")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("broadcast", parents=[common], help="向一个支部或全部支部发通知（经推送队列）")
    p.add_argument("text", help="通知内容")
    p.add_argument("--branch", help="支部名（默认全部支部）")
    p.add_argument("--title", default="支部通知")
    p.add_argument("--yes", action="store_true", help="不再询问，直接发送")
    p.set_defaults(func=cmd_broadcast)

    p = sub.add_parser("export", parents=[common], help="导出 Excel：成绩、参与率、考勤 或 推送")
    p.add_argument(
        "kind",
        metavar="类型",
        type=aliases("kind", EXPORT_KINDS, "成绩、参与率、考勤、推送"),
        help="成绩、参与率、考勤 或 推送（也接受 scores / participation / attendance / deliveries）",
    )
    p.add_argument("--month", help="YYYY-MM，默认本月")
    p.add_argument("-o", "--output", required=True, metavar="FILE.xlsx")
    p.add_argument("--branch", help="只导出某个支部")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("audit", parents=[common], help="审计日志：导入、导出、角色变更、通知等")
    p.add_argument("--limit", type=positive_int, default=50, help="显示条数（默认 50）")
    p.add_argument("--action", help="只看某类操作，如 导出、角色变更、导入名册")
    p.set_defaults(func=cmd_audit)

    outbox = sub.add_parser("outbox", parents=[common], help="推送队列").add_subparsers(dest="action", required=True)
    p = outbox.add_parser("run", parents=[common], help="立即发送待发的推送，发完为止")
    p.add_argument("--max-seconds", type=float, default=600)
    p.set_defaults(func=cmd_outbox_run)
    p = outbox.add_parser("status", parents=[common], help="各次推送的发送结果")
    p.add_argument("campaign", nargs="?", type=int)
    p.set_defaults(func=cmd_outbox_status)

    jobs = sub.add_parser("jobs", parents=[common], help="定时任务").add_subparsers(dest="action", required=True)
    jobs.add_parser("list", parents=[common], help="各任务下次运行时间").set_defaults(func=cmd_jobs_list)
    p = jobs.add_parser("run", parents=[common], help="立即运行一次（同一次不会重复运行）")
    p.add_argument("name")
    p.add_argument("--at", help="运行哪一次：YYYY-MM-DD HH:MM（默认最近一次应运行的时间）")
    p.add_argument("--send", action="store_true", help="运行后立即发送")
    p.set_defaults(func=cmd_jobs_run)

    p = sub.add_parser("calendar", parents=[common], help="某年的节日与廉洁过节提醒计划")
    p.add_argument("year", type=year, metavar="年份", help="如 2027")
    p.set_defaults(func=cmd_calendar)

    db = sub.add_parser("db", parents=[common], help="数据库").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", parents=[common], help="把数据库升级到程序的版本").set_defaults(func=cmd_db_upgrade)
    p = db.add_parser("backup", parents=[common], help="SQLite 在线备份（服务无需停止）")
    p.add_argument("path")
    p.set_defaults(func=cmd_db_backup)

    menu = sub.add_parser("menu", parents=[common], help="公众号自定义菜单").add_subparsers(
        dest="action", required=True
    )
    p = menu.add_parser("push", parents=[common], help="按配置 [menu]（或默认菜单）设置公众号菜单")
    p.add_argument("--dry-run", action="store_true", help="只显示将设置的菜单，不提交")
    p.set_defaults(func=cmd_menu_push)
    menu.add_parser("show", parents=[common], help="显示微信上现在的菜单").set_defaults(func=cmd_menu_show)

    p = sub.add_parser("doctor", parents=[common], help="检查配置、公众号/企业微信凭证和数据库（不会修改任何东西）")
    p.add_argument("--show-config", action="store_true", help="同时显示生效配置（密钥已隐藏）")
    p.set_defaults(func=cmd_doctor)
    return parser


def _check_calendar(config: Config, path: str | None) -> None:
    """The festival names in [holidays.YYYY] are the calendar's to judge, so the check runs
    here, where configuration and domain meet, rather than in bot.config."""
    problems = unknown_festivals(config.holidays)
    if problems:
        origin = path or os.environ.get("BRANCHBOT_CONFIG", "config.toml")
        raise ConfigError("\n".join([f"配置有误（{origin}）："] + [f"  holidays：{p}" for p in problems]))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.command == "serve" else logging.WARNING
    try:
        config = load_config(args.config)
        _check_calendar(config, args.config)
        setup_logging(config, level)
        command: Callable[[argparse.Namespace, Config], int] = args.func
        return command(args, config)
    except (ConfigError, CliError, FileProblem, SchemaMismatch) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
