"""The ``branchbot`` command. Every subcommand takes ``--config PATH``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from rich.markup import escape

from bot.cli import chat, doctor, members, menu, ops, quiz, reports, serve
from bot.cli.common import CliError, err
from bot.cli.parsing import ChineseArgumentParser
from bot.config import Config, ConfigError, load_config
from bot.redact import setup_logging
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
    for group in (serve, chat, members, quiz, reports, ops, menu, doctor):  # the order of --help
        group.register(sub, common)
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
