"""init and serve: create the database, start the service."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


from bot.cli.common import DEMO_ROSTER, CliError, _store, console
from bot.cli.members import _import_roster
from bot.cli.quiz import _import_questions
from bot.config import Config


def cmd_init(args: argparse.Namespace, config: Config) -> int:
    from quizzes import bank

    from bot.store.migrate import upgrade

    store = _store(config, must_exist=False)
    before, after = upgrade(store)
    state = "已创建" if before is None else ("已升级" if before != after else "已是最新")
    console.print(f"数据库{state}（版本 {after}）：{config.database.url}")
    for path in bank.bundled_files():
        _import_questions(store, path, config)
    if args.demo:
        console.print("[yellow]导入演示名册（姓名、手机号均为虚构，仅供体验）[/yellow]")
        _import_roster(store, DEMO_ROSTER, config, demo=True)
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.store.migrate import check

    store = _store(config)
    check(store)
    workers = config.server.workers if args.workers is None else args.workers
    if workers < 1:
        raise CliError("--workers 至少为 1")
    base = f"http://{config.server.host}:{config.server.port}"
    console.print(f"BranchBot 正在监听 {base}  （公众号回调 {base}/wechat，企业微信回调 {base}/wecom）"
                  + (f"，{workers} 个进程" if workers > 1 else ""))
    if config.simulator.enabled:
        console.print(f"[green]聊天模拟器：{base}/[/green]  选择一位名册成员即可开始对话")
    options = dict(host=config.server.host, port=config.server.port, log_level="info", access_log=False)
    if workers == 1:
        uvicorn.run(create_app(config, store, background=True), **options)
        return 0
    # Each worker process builds its own app from the same config file (and the same
    # BRANCHBOT__ overrides, which it inherits); they share the database like instances.
    store.dispose()
    os.environ["BRANCHBOT_CONFIG"] = str(Path(args.config or os.environ.get("BRANCHBOT_CONFIG", "config.toml")).resolve())
    os.environ["BRANCHBOT__SERVER__WORKERS"] = str(workers)  # each worker takes its share of the send rate limits
    uvicorn.run("bot.app:app_from_environment", factory=True, workers=workers, **options)
    return 0

