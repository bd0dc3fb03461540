"""Doctor's checks against the platforms: can this server really push?

Each check makes the same calls a push needs (an access token from the configured API
base, the template, the WeCom app) and turns WeChat's errcodes into a Chinese line that
says what to fix. Nothing here writes to the database or sends a message: the stable
token endpoint in normal mode returns the token already in use without invalidating it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import httpx

from bot.checks import env_name
from bot.config import Config
from bot.outbox.senders import PlatformError, TransportError, checked

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    level: Level
    text: str


_WHITELIST_OA = "公众号后台「设置与开发 → 基本配置 → IP白名单」"
_WHITELIST_WECOM = "企业微信管理后台「应用管理 → 应用 → 企业可信IP」"


def _ip_in(errmsg: str) -> str:
    found = re.search(r"invalid ip ([0-9a-fA-F.:]+)", errmsg) or re.search(r"from ip:?\s*([0-9a-fA-F.:]+)", errmsg)
    return found.group(1) if found else ""


def oa_token_problem(exc: PlatformError) -> str:
    """The Official Account's token errcodes, as the operator's fix."""
    code = exc.errcode
    if code == 40164:
        ip = _ip_in(exc.errmsg)
        where = f"本服务器的出口 IP {ip}" if ip else "本服务器的出口公网 IP"
        return f"40164 调用接口的 IP 不在白名单中：请在{_WHITELIST_OA}中加入{where}，几分钟后生效"
    if code in (40125, 40001, 41004):
        return (
            f"{code} AppSecret 不正确：请在公众号后台「设置与开发 → 基本配置」重置开发者密码（AppSecret），"
            f"通过 {env_name('wechat.app_secret')} 设置（注意不要带空格）"
        )
    if code in (40013, 41002):
        return f"{code} AppID 不正确：请核对公众号后台「设置与开发 → 基本配置」中的开发者 ID（AppID），通过 {env_name('wechat.app_id')} 设置"
    if code == 40243:
        return "40243 AppSecret 已被冻结：请在公众号后台「设置与开发 → 基本配置」解冻或重置 AppSecret"
    if code in (45009, 45011):
        return f"{code} 获取 access_token 的次数已达上限：请稍后再试，并确认没有其他程序在频繁获取"
    if code == -1:
        return "-1 微信系统繁忙：请稍后再运行 branchbot doctor"
    return f"{code} {exc.errmsg}：获取 access_token 失败"


def wecom_token_problem(exc: PlatformError) -> str:
    code = exc.errcode
    if code == 60020:
        ip = _ip_in(exc.errmsg)
        return f"60020 调用接口的 IP 不在企业可信 IP 中：请在{_WHITELIST_WECOM}中加入{('本服务器的出口 IP ' + ip) if ip else '本服务器的出口公网 IP'}"
    if code in (40013, 40089):
        return f"{code} 企业 ID 不正确：请核对企业微信管理后台「我的企业 → 企业信息」中的企业ID，通过 {env_name('wecom.corp_id')} 设置"
    if code in (40001, 40091, 42013):
        return f"{code} 应用 Secret 不正确：请在企业微信管理后台「应用管理 → 应用」查看 Secret，通过 {env_name('wecom.secret')} 设置"
    return f"{code} {exc.errmsg}：获取企业微信 access_token 失败"


def _unreachable(base: str, exc: TransportError) -> str:
    return f"无法访问 {base}（{exc.errmsg}）：请检查本机能否访问外网、代理和防火墙设置"


def check_wechat(config: Config, timeout: float = 10.0) -> list[Finding]:
    w = config.wechat
    base = w.api_base
    with httpx.Client(base_url=base, timeout=timeout) as http:
        try:
            data = checked(
                http,
                "POST",
                "/cgi-bin/stable_token",
                json={"grant_type": "client_credential", "appid": w.app_id, "secret": w.app_secret},
            )
        except PlatformError as exc:
            return [Finding("error", oa_token_problem(exc))]
        except TransportError as exc:
            return [Finding("error", _unreachable(base, exc))]
        token = data.get("access_token", "")
        found = [Finding("ok", f"公众号 access_token 获取成功（{base}）")]
        if not w.template_id:
            found.append(
                Finding(
                    "warning",
                    "未设置 wechat.template_id：超过 48 小时未互动的成员收不到推送，只能在「通知」中查看"
                    "（模板消息仅限已认证的服务号）",
                )
            )
            return found
        try:
            templates = checked(
                http, "GET", "/cgi-bin/template/get_all_private_template", params={"access_token": token}
            )
        except PlatformError as exc:
            if exc.errcode == 48001:
                found.append(
                    Finding(
                        "error",
                        "48001 本公众号没有模板消息权限：模板消息仅限已认证的服务号，"
                        "请在公众号后台开通「模板消息」，或清空 wechat.template_id",
                    )
                )
            else:
                found.append(Finding("error", f"{exc.errcode} {exc.errmsg}：无法读取模板列表"))
            return found
        except TransportError as exc:
            return found + [Finding("error", _unreachable(base, exc))]
        titles = {t.get("template_id"): t.get("title", "") for t in templates.get("template_list", [])}
        if w.template_id in titles:
            found.append(Finding("ok", f"模板消息 {w.template_id}「{titles[w.template_id]}」存在"))
        else:
            found.append(
                Finding(
                    "error",
                    f"模板 {w.template_id} 不在本公众号的模板列表中：请在公众号后台「广告与服务 → 模板消息 → 我的模板」"
                    "核对模板 ID，通过 BRANCHBOT__WECHAT__TEMPLATE_ID 设置",
                )
            )
        return found


def check_wecom(config: Config, timeout: float = 10.0) -> list[Finding]:
    c = config.wecom
    base = c.api_base
    with httpx.Client(base_url=base, timeout=timeout) as http:
        try:
            data = checked(http, "GET", "/cgi-bin/gettoken", params={"corpid": c.corp_id, "corpsecret": c.secret})
        except PlatformError as exc:
            return [Finding("error", wecom_token_problem(exc))]
        except TransportError as exc:
            return [Finding("error", _unreachable(base, exc))]
        token = data.get("access_token", "")
        found = [Finding("ok", f"企业微信 access_token 获取成功（{base}）")]
        try:
            agent = checked(http, "GET", "/cgi-bin/agent/get", params={"access_token": token, "agentid": c.agent_id})
        except PlatformError as exc:
            if exc.errcode in (40056, 301002):
                text = f"{exc.errcode} 应用 AgentId {c.agent_id} 不存在或不属于这个 Secret：请核对 {env_name('wecom.agent_id')} 与 {env_name('wecom.secret')} 是同一个应用的"
            elif exc.errcode == 60020:
                text = wecom_token_problem(exc)
            else:
                text = f"{exc.errcode} {exc.errmsg}：无法读取企业微信应用信息"
            return found + [Finding("error", text)]
        except TransportError as exc:
            return found + [Finding("error", _unreachable(base, exc))]
        name = agent.get("name", c.agent_id)
        if agent.get("close"):
            found.append(Finding("error", f"企业微信应用「{name}」已停用：请在管理后台「应用管理」中启用"))
            return found
        visible = any(
            (agent.get(k) or {}).get(item)
            for k, item in (("allow_userinfos", "user"), ("allow_partys", "partyid"), ("allow_tags", "tagid"))
        )
        if visible:
            found.append(Finding("ok", f"企业微信应用「{name}」可以发送消息"))
        else:
            found.append(
                Finding(
                    "error", f"企业微信应用「{name}」的可见范围为空：消息发不到任何人，请在管理后台设置应用的可见范围"
                )
            )
        return found
