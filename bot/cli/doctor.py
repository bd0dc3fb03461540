"""doctor: check configuration, credentials and database."""

from __future__ import annotations

import argparse

from sqlmodel import select

from bot.cli.common import console
from bot.config import Config, masked
from bot.store import Member, create_store


def cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    import json

    console.print("生效配置（密钥已隐藏）：")
    console.print_json(json.dumps(masked(config), ensure_ascii=False))
    problems: list[str] = []
    notes: list[str] = []
    w = config.wechat
    if not w.token:
        problems.append("wechat.token 为空：公众号后台填写的 Token 需通过 BRANCHBOT__WECHAT__TOKEN 提供")
    if w.mode != "plain" and len(w.encoding_aes_key) != 43:
        problems.append("wechat.encoding_aes_key 必须是 43 位")
    if config.wecom.corp_id and not config.wecom.enabled:
        problems.append("wecom.corp_id 已填写，但 wecom.token 或 wecom.encoding_aes_key 为空，/wecom 不会启用")
    if config.simulator.enabled:
        notes.append("simulator.enabled = true：模拟器可以伪造签名消息，正式上线前务必关闭")
    try:
        store = create_store(config.database.url)
        store.ping()
        if store.is_initialised():
            with store.session() as db:
                count = len(db.exec(select(Member.id)).all())
            notes.append(f"数据库可连接，名册 {count} 人")
        else:
            problems.append("数据库可连接但尚未初始化：运行 branchbot init")
    except Exception as exc:
        problems.append(f"数据库无法连接（{config.database.url}）：{exc}")
    for note in notes:
        console.print(f"[yellow]•[/yellow] {note}")
    for problem in problems:
        console.print(f"[red]✗[/red] {problem}")
    if not problems:
        console.print("[green]✓ 检查通过[/green]")
    return 1 if problems else 0

