"""chat: talk to the bot in the terminal as a roster member."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime

from sqlmodel import col, select

from bot.cli.common import CliError, _store, console
from bot.cli.parsing import ChineseArgumentParser, Commands
from bot.config import Config
from bot.store import Member


def cmd_chat(args: argparse.Namespace, config: Config) -> int:
    from bot.engine import Engine
    from bot.messages import Inbound
    from handlers import build_registry

    store = _store(config)
    with store.session() as db:
        found = db.exec(select(Member).where(col(Member.name) == args.as_name)).all()
    if not found:
        raise CliError(f"名册中没有「{args.as_name}」。用 branchbot members list 查看名册。")
    if len(found) > 1:
        tails = "、".join(m.phone[-4:] for m in found)
        raise CliError(f"名册中有 {len(found)} 位「{args.as_name}」（手机尾号 {tails}），请在名册中区分后再试。")
    member = found[0]
    engine = Engine(store, config, build_registry())
    console.print(f"以「{member.name}」的身份对话（经过与微信消息相同的路由）。输入「退出」或按 Ctrl-D 结束。")
    lines = sys.stdin
    while True:
        if sys.stdin.isatty():
            console.print("[bold]> [/bold]", end="")
        line = lines.readline()
        if not line or line.strip() in ("退出", "exit", "quit"):
            return 0
        if not line.strip():
            continue
        inbound = Inbound(
            channel="cli",
            sender=str(member.id),
            kind="text",
            key=f"cli:{uuid.uuid4()}",
            created_at=datetime.now(UTC),
            text=line.strip(),
        )
        console.print(engine.handle(inbound) or "（无回复）", highlight=False, markup=False, soft_wrap=True)
        console.print()


def register(sub: Commands, common: ChineseArgumentParser) -> None:
    """chat --as NAME."""
    p = sub.add_parser("chat", parents=[common], help="在终端里以名册成员身份对话")
    p.add_argument("--as", dest="as_name", required=True, metavar="NAME")
    p.set_defaults(func=cmd_chat)
