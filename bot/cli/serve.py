"""init and serve: create the database, start the service."""

from __future__ import annotations

import argparse
import errno
import os
import socket
from pathlib import Path

from rich.markup import escape

from bot.checks import config_problems, env_name
from bot.cli.common import DEMO_ROSTER, CliError, _store, console
from bot.cli.members import _import_roster
from bot.cli.parsing import ChineseArgumentParser, Commands, positive_int
from bot.cli.quiz import _import_questions
from bot.config import Config
from bot.redact import mask_url


def cmd_init(args: argparse.Namespace, config: Config) -> int:
    from bot.store.migrate import upgrade
    from quizzes import bank

    store = _store(config, must_exist=False)
    before, after = upgrade(store)
    state = "已创建" if before is None else ("已升级" if before != after else "已是最新")
    console.print(f"数据库{state}（版本 {after}）：{mask_url(config.database.url)}", highlight=False, markup=False)
    for path in bank.bundled_files():
        _import_questions(store, path, config)
    with store.session() as db:
        retired = bank.retire_questions(db, bank.retired_keys())
    if retired:
        console.print(f"停用已改写或撤下的内置旧题 {retired} 道。", highlight=False, markup=False)
    if args.demo:
        console.print("[yellow]导入演示名册（姓名、手机号均为虚构，仅供体验）[/yellow]")
        _import_roster(store, DEMO_ROSTER, config, demo=True)
    return 0


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.store.migrate import check

    problems = config_problems(config)
    refused = [p for p in problems if p.refuses_serve]
    if refused:
        raise CliError(
            "配置有误，服务未启动：\n"
            + "\n".join(f"  ✗ {p.text}" for p in refused)
            + "\n修改后可运行 branchbot doctor 检查。"
        )
    store = _store(config)
    check(store)
    workers = config.server.workers if args.workers is None else args.workers
    if workers < 1:
        raise CliError("--workers 至少为 1")
    _check_port_free(config.server.host, config.server.port)
    for problem in problems:
        if problem.level == "error":
            console.print(f"[yellow]![/yellow] {escape(problem.text)}", highlight=False, soft_wrap=True)
    base = f"http://{config.server.host}:{config.server.port}"
    console.print(
        f"BranchBot 正在监听 {base}  （公众号回调 {base}/wechat，企业微信回调 {base}/wecom）"
        + (f"，{workers} 个进程" if workers > 1 else "")
    )
    if config.simulator.enabled:
        console.print(f"[green]聊天模拟器：{base}/[/green]  选择一位名册成员即可开始对话")
    if config.console.enabled:
        console.print(f"管理后台：{config.console_base_url}/console/  （书记或管理员向机器人发送「后台」获取登录链接）")
    from bot.serving import raise_file_limit, uvicorn_options

    raise_file_limit()
    # log_config=None: uvicorn's lines go through our root handler, which hides secrets.
    options = uvicorn_options(config) | {"log_config": None}
    if workers == 1:
        uvicorn.run(create_app(config, store, background=True), **options)
        return 0
    # Each worker process builds its own app from the same config file (and the same
    # BRANCHBOT__ overrides, which it inherits); they share the database like instances.
    store.dispose()
    os.environ["BRANCHBOT_CONFIG"] = str(
        Path(args.config or os.environ.get("BRANCHBOT_CONFIG", "config.toml")).resolve()
    )
    os.environ["BRANCHBOT__SERVER__WORKERS"] = str(workers)  # each worker takes its share of the send rate limits
    uvicorn.run("bot.app:app_from_environment", factory=True, workers=workers, **options)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """One Chinese line instead of uvicorn's [Errno 98] traceback when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(
                    f"端口 {port} 已被占用（可能已有一个 BranchBot 在运行）：请先停止它，或换一个端口，"
                    f"如 {env_name('server.port')}={port + 1} branchbot serve"
                ) from exc
            if exc.errno == errno.EADDRNOTAVAIL:
                raise CliError(f"本机没有地址 {host}：请检查 server.host（{env_name('server.host')}）") from exc
            if exc.errno == errno.EACCES:
                raise CliError(
                    f"没有权限使用端口 {port}：1024 以下的端口需要管理员权限，请改用 8000 等端口"
                    f"（{env_name('server.port')}），由 nginx 对外提供 80/443"
                ) from exc
            raise


def register(sub: Commands, common: ChineseArgumentParser) -> None:
    """init and serve."""
    p = sub.add_parser("init", parents=[common], help="创建或升级数据库并导入内置题库")
    p.add_argument("--demo", action="store_true", help="同时导入演示名册")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("serve", parents=[common], help="启动服务")
    p.add_argument("--workers", type=positive_int, metavar="N", help="服务进程数（默认 server.workers，即 1）")
    p.set_defaults(func=cmd_serve)
