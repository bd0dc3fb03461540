"""doctor: tell the operator the truth about whether this installation can serve and push.

Configuration rules come from bot/checks.py (the same ones ``serve`` enforces), platform
checks from bot/probe.py. Exit status 1 when anything would fail in production. Doctor
never creates or changes a database, and never prints a secret.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.markup import escape
from sqlmodel import col, select

from bot.checks import config_problems, is_demo, wechat_configured, wecom_configured
from bot.cli.common import console
from bot.cli.parsing import ChineseArgumentParser, Commands
from bot.config import Config
from bot.probe import Finding, check_wechat, check_wecom
from bot.redact import mask_url, masked, redact, secret_values

MARKS = {"ok": "[green]✓[/green]", "warning": "[yellow]![/yellow]", "error": "[red]✗[/red]"}


def database_findings(config: Config) -> list[Finding]:
    """Reachable, initialised, at the code's schema version; without creating anything."""
    from bot.store import Branch, Member, create_store
    from bot.store.db import _sqlite_path
    from bot.store.members import IS_ACTIVE
    from bot.store.migrate import current, head

    url = config.database.url
    shown = mask_url(url)
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path and not Path(path).exists():
            return [Finding("error", f"数据库文件不存在（{shown}）：请先运行 branchbot init")]
    store = None
    try:
        store = create_store(url)
        store.ping()
        revision, latest = current(store), head(store)
        if revision is None or not store.is_initialised():
            return [Finding("error", f"数据库可连接但尚未初始化（{shown}）：请运行 branchbot init")]
        if revision != latest:
            return [Finding("error", f"数据库版本 {revision} 与程序（{latest}）不一致：请运行 branchbot db upgrade")]
        with store.session() as db:
            members = len(db.exec(select(col(Member.id)).where(IS_ACTIVE)).all())
            branches = set(db.exec(select(col(Branch.name))).all())
        found = [Finding("ok", f"数据库可连接，版本 {revision}（最新），在册成员 {members} 人（{shown}）")]
        for branch in config.robots.keys:
            if branch not in branches:
                found.append(
                    Finding("warning", f"robots.keys 中的「{branch}」不是名册中的支部名：这个群机器人不会收到推送")
                )
        return found
    except Exception as exc:  # any driver error: the message may quote the URL, so redact it
        detail = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, secret_values(config))
        return [Finding("error", f"数据库无法连接（{shown}）：{detail}")]
    finally:
        if store is not None:
            store.dispose()


def run_checks(config: Config) -> list[tuple[str, list[Finding]]]:
    """Every check, grouped as doctor prints them."""
    demo = is_demo(config)
    problems = config_problems(config)
    settings = [Finding(p.level, p.text) for p in problems] or [Finding("ok", "配置项完整")]
    if not config.simulator.enabled:
        settings.append(Finding("ok", "聊天模拟器已关闭"))
    if wechat_configured(config) and config.wechat.mode != "plain":
        settings.append(
            Finding("ok", f"公众号消息加密：{ {'safe': '安全模式', 'compatible': '兼容模式'}[config.wechat.mode] }")
        )
    if demo:
        settings.append(
            Finding(
                "warning",
                "演示模式：聊天模拟器已开启，没有配置正式账号，推送只送到模拟器。"
                "正式上线请关闭模拟器（BRANCHBOT__SIMULATOR__ENABLED=false），并按 README「正式接入」配置",
            )
        )
    sections = [("配置", settings)]
    w, c = config.wechat, config.wecom
    if wechat_configured(config) and w.app_id and w.app_secret:
        sections.append(("公众号", check_wechat(config)))
    if wecom_configured(config) and c.corp_id and c.secret and c.agent_id:
        sections.append(("企业微信", check_wecom(config)))
    sections.append(("数据库", database_findings(config)))
    return sections


def cmd_doctor(args: argparse.Namespace, config: Config) -> int:
    if getattr(args, "show_config", False):
        console.print("生效配置（密钥已隐藏）：")
        console.print_json(json.dumps(masked(config), ensure_ascii=False))
    sections = run_checks(config)
    for title, findings in sections:
        console.print(f"[bold]{title}[/bold]")
        for finding in findings:
            console.print(f"  {MARKS[finding.level]} {escape(finding.text)}", highlight=False, soft_wrap=True)
    errors = sum(1 for _, findings in sections for f in findings if f.level == "error")
    warnings = sum(1 for _, findings in sections for f in findings if f.level == "warning")
    console.print()
    if errors:
        console.print(
            f"[red]✗ 发现 {errors} 个问题[/red]：按上面的提示修改后，再运行 branchbot doctor。", highlight=False
        )
        return 1
    console.print("[green]✓ 检查通过[/green]" + (f"（{warnings} 条提醒）" if warnings else ""), highlight=False)
    return 0


def register(sub: Commands, common: ChineseArgumentParser) -> None:
    """doctor."""
    p = sub.add_parser("doctor", parents=[common], help="检查配置、公众号/企业微信凭证和数据库（不会修改任何东西）")
    p.add_argument("--show-config", action="store_true", help="同时显示生效配置（密钥已隐藏）")
    p.set_defaults(func=cmd_doctor)
