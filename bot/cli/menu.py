"""menu push / menu show: the Official Account's custom menu through WeChat's API."""

from __future__ import annotations

import argparse
import json
from typing import Any

import httpx

from bot.checks import env_name
from bot.cli.common import CliError, console
from bot.cli.parsing import ChineseArgumentParser, Commands
from bot.config import Config
from bot.menu import describe, menu_payload, unhandled_keys
from bot.outbox.senders import PlatformError, TransportError, checked
from bot.probe import oa_token_problem


def _call(config: Config, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One API call with a fresh stable token (normal mode: the running service's token stays valid)."""
    w = config.wechat
    missing = [k for k, v in (("wechat.app_id", w.app_id), ("wechat.app_secret", w.app_secret)) if not v]
    if missing:
        raise CliError(
            f"{' 和 '.join(missing)} 为空：设置菜单需要公众号的开发者 ID 和密码，"
            f"请通过 {'、'.join(env_name(k) for k in missing)} 设置"
        )
    with httpx.Client(base_url=w.api_base, timeout=config.outbox.timeout_seconds) as http:
        try:
            token = checked(
                http,
                "POST",
                "/cgi-bin/stable_token",
                json={"grant_type": "client_credential", "appid": w.app_id, "secret": w.app_secret},
            )["access_token"]
        except PlatformError as exc:
            raise CliError(oa_token_problem(exc)) from exc
        except TransportError as exc:
            raise CliError(f"无法访问 {w.api_base}（{exc.errmsg}）") from exc
        try:
            return checked(http, method, path, params={"access_token": token}, **kwargs)
        except PlatformError as exc:
            if exc.errcode == 48001:
                raise CliError(
                    "48001 本公众号没有自定义菜单接口权限：个人订阅号和未认证的订阅号请在公众号后台「内容与互动 → 自定义菜单」手工设置"
                ) from exc
            if exc.errcode == 46003:
                raise
            raise CliError(f"{exc.errcode} {exc.errmsg}：微信拒绝了菜单请求") from exc
        except TransportError as exc:
            raise CliError(f"无法访问 {w.api_base}（{exc.errmsg}）") from exc


def cmd_menu_push(args: argparse.Namespace, config: Config) -> int:
    from handlers import build_registry

    buttons = config.menu.buttons
    unknown = unhandled_keys(buttons, build_registry().menu_keys)
    if unknown:
        raise CliError(
            f"菜单中的 key {'、'.join(unknown)} 没有对应的功能：可用的 key 有 "
            f"{'、'.join(build_registry().menu_keys)}，请修改配置 [menu]"
        )
    payload = menu_payload(buttons)
    console.print("将设置的公众号菜单：", highlight=False)
    for line in describe(payload):
        console.print(f"  {line}", highlight=False, markup=False)
    if args.dry_run:
        console.print("（--dry-run：未提交给微信）")
        return 0
    # WeChat shows \\uXXXX escapes literally in menu names: send the UTF-8 text itself.
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    _call(
        config,
        "POST",
        "/cgi-bin/menu/create",
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    console.print("[green]✓ 菜单已提交[/green]：关注者的菜单会在几分钟内更新（重新关注可立即看到）。", highlight=False)
    return 0


def cmd_menu_show(args: argparse.Namespace, config: Config) -> int:
    try:
        data = _call(config, "GET", "/cgi-bin/menu/get")
    except PlatformError:  # 46003
        console.print("公众号目前没有通过接口设置的菜单。运行 branchbot menu push 设置默认菜单。")
        return 0
    console.print("微信上现在的公众号菜单：", highlight=False)
    for line in describe(data.get("menu", {})):
        console.print(f"  {line}", highlight=False, markup=False)
    return 0


def register(sub: Commands, common: ChineseArgumentParser) -> None:
    """menu push | show."""
    menu = sub.add_parser("menu", parents=[common], help="公众号自定义菜单").add_subparsers(
        dest="action", required=True
    )
    p = menu.add_parser("push", parents=[common], help="按配置 [menu]（或默认菜单）设置公众号菜单")
    p.add_argument("--dry-run", action="store_true", help="只显示将设置的菜单，不提交")
    p.set_defaults(func=cmd_menu_push)
    menu.add_parser("show", parents=[common], help="显示微信上现在的菜单").set_defaults(func=cmd_menu_show)
