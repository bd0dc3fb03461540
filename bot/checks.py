"""What is wrong with a configuration: one home for the rules ``serve`` and ``doctor`` share.

``config_problems`` is pure (no network, no database): it looks only at the validated
``Config``. ``serve`` refuses to start on any ``error``; ``doctor`` prints every problem
and then goes on to the checks that need the network and the database (bot/probe.py).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from bot.config import Config

DEMO_TOKEN = "branchbotdemo"  # the token in the shipped config.toml: public, for the simulator only
ROBOT_KEY = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Problem:
    level: Literal["error", "warning"]
    key: str  # the configuration key to change, e.g. wechat.token
    text: str  # what is wrong and how to fix it, in Chinese
    # serve refuses to start on this (an open door); other errors (pushes that would
    # fail) make doctor fail while serve starts and says so.
    refuses_serve: bool = False


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def env_name(key: str) -> str:
    """wechat.app_secret → BRANCHBOT__WECHAT__APP_SECRET."""
    return "BRANCHBOT__" + "__".join(part.upper() for part in key.split("."))


def wechat_configured(config: Config) -> bool:
    """The Official Account channel is in use: something of it is set, or nothing else is."""
    w = config.wechat
    return bool(w.app_id or w.app_secret or w.encoding_aes_key or w.mode != "plain" or w.token) or not wecom_configured(
        config
    )


def wecom_configured(config: Config) -> bool:
    c = config.wecom
    return bool(c.corp_id or c.agent_id or c.secret or c.token or c.encoding_aes_key)


def real_credentials(config: Config) -> list[str]:
    """Keys holding credentials of a real account (the simulator must never run beside them)."""
    found = []
    if config.wechat.encoding_aes_key:
        found.append("wechat.encoding_aes_key")
    if config.wechat.app_secret:
        found.append("wechat.app_secret")
    if config.wecom.encoding_aes_key:
        found.append("wecom.encoding_aes_key")
    if config.wecom.secret:
        found.append("wecom.secret")
    return found


def is_demo(config: Config) -> bool:
    """The shipped demo: simulator on, on loopback, with no real account's credentials."""
    return config.simulator.enabled and is_loopback(config.server.host) and not real_credentials(config)


def config_problems(config: Config) -> list[Problem]:
    """Every problem visible in the configuration alone, errors first."""
    problems: list[Problem] = []

    def error(key: str, text: str, refuses_serve: bool = True) -> None:
        problems.append(Problem("error", key, text, refuses_serve))

    def warning(key: str, text: str) -> None:
        problems.append(Problem("warning", key, text))

    demo = is_demo(config)
    w, c = config.wechat, config.wecom

    # The simulator forges signed messages and lists the roster: loopback and demo only.
    if config.simulator.enabled:
        if not is_loopback(config.server.host):
            error(
                "simulator.enabled",
                f"聊天模拟器只能在本机地址上运行，而 server.host = {config.server.host}："
                "正式部署请设置 BRANCHBOT__SIMULATOR__ENABLED=false；只想体验请把 server.host 改回 127.0.0.1",
            )
        credentials = real_credentials(config)
        if credentials:
            error(
                "simulator.enabled",
                f"已配置正式账号的密钥（{'、'.join(credentials)}），不能同时开启聊天模拟器："
                "请设置 BRANCHBOT__SIMULATOR__ENABLED=false",
            )

    if wechat_configured(config):
        if not w.token:
            error(
                "wechat.token",
                f"wechat.token 为空：任何人都能伪造公众号消息。请设置环境变量 {env_name('wechat.token')}，"
                "与公众号后台「设置与开发 → 基本配置 → 服务器配置」中的令牌（Token）一致",
            )
        elif w.token == DEMO_TOKEN and not config.simulator.enabled:
            error(
                "wechat.token",
                f"wechat.token 仍是公开的演示令牌「{DEMO_TOKEN}」：任何人都能伪造消息。"
                f"请在公众号后台生成新的令牌，并通过 {env_name('wechat.token')} 设置",
            )
        if w.mode != "plain" and not w.encoding_aes_key:  # also refused by the config model; kept for clarity
            error(
                "wechat.encoding_aes_key",
                f"mode = {w.mode} 需要 EncodingAESKey：请设置 {env_name('wechat.encoding_aes_key')}",
            )
        if w.mode == "plain" and not demo:
            warning(
                "wechat.mode",
                "公众号使用明文模式：消息内容不加密。建议在公众号后台改为安全模式，"
                f"并设置 wechat.mode = \"safe\" 与 {env_name('wechat.encoding_aes_key')}",
            )
        if not demo:
            missing = [k for k, v in (("wechat.app_id", w.app_id), ("wechat.app_secret", w.app_secret)) if not v]
            if missing:
                error(
                    missing[0],
                    f"{' 和 '.join(missing)} 为空：通知、会议通知、催办、月度测试提醒等推送都无法发送。"
                    f"请在公众号后台「设置与开发 → 基本配置」查看开发者 ID（AppID）和密码（AppSecret），"
                    f"通过 {'、'.join(env_name(k) for k in missing)} 设置",
                    refuses_serve=False,
                )
        if w.template_fields and not w.template_id:
            warning(
                "wechat.template_id",
                "填写了 wechat.template_fields 但 wechat.template_id 为空：超过 48 小时未互动的成员只能在「通知」中看到推送",
            )

    if wecom_configured(config):
        for key, value in (
            ("wecom.corp_id", c.corp_id),
            ("wecom.token", c.token),
            ("wecom.encoding_aes_key", c.encoding_aes_key),
        ):
            if not value:
                error(
                    key,
                    f"已配置企业微信，但 {key} 为空：/wecom 无法接收消息。请通过 {env_name(key)} 设置"
                    "（企业微信管理后台「应用管理 → 应用 → 接收消息 → 设置API接收」）",
                )
        for key, value in (("wecom.agent_id", c.agent_id), ("wecom.secret", c.secret)):
            if not value:
                error(
                    key,
                    f"已配置企业微信，但 {key} 为空：企业微信推送无法发送。请通过 {env_name(key)} 设置"
                    "（企业微信管理后台「应用管理 → 应用」中的 AgentId 和 Secret）",
                    refuses_serve=False,
                )

    for branch, key in config.robots.keys.items():
        if "key=" in key or key.startswith("http"):
            error(
                f"robots.keys.{branch}",
                f"群机器人「{branch}」填写的是整个 Webhook 地址：只需填写地址中 key= 后面的部分",
                refuses_serve=False,
            )
        elif not ROBOT_KEY.match(key):
            error(
                f"robots.keys.{branch}",
                f"群机器人「{branch}」的 key 格式不对：应为 8-4-4-4-12 位的十六进制串"
                "（群聊 → 消息推送 → Webhook 地址中 key= 后面的部分）",
                refuses_serve=False,
            )

    problems.sort(key=lambda p: p.level != "error")
    return problems
