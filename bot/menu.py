"""The Official Account menu: the JSON WeChat's menu/create takes, and the keys it uses.

Pure functions over the ``[menu]`` configuration; the CLI sends the payload. Every key a
button sends must be registered in handlers/__init__.py (``bot.menu``), or pressing it
would do nothing useful: ``unhandled_keys`` finds those before anything is pushed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from bot.config import MenuButton


def _button(button: MenuButton) -> dict[str, Any]:
    if button.sub_button:
        return {"name": button.name, "sub_button": [_button(b) for b in button.sub_button]}
    item: dict[str, Any] = {"type": button.type, "name": button.name}
    if button.type == "view":
        item["url"] = button.url
    elif button.type == "miniprogram":
        item.update(url=button.url, appid=button.appid, pagepath=button.pagepath)
    else:
        item["key"] = button.key
    return item


def menu_payload(buttons: Iterable[MenuButton]) -> dict[str, Any]:
    """The body of POST /cgi-bin/menu/create."""
    return {"button": [_button(b) for b in buttons]}


def _leaves(buttons: Iterable[MenuButton]) -> Iterator[MenuButton]:
    for button in buttons:
        if button.sub_button:
            yield from _leaves(button.sub_button)
        else:
            yield button


def unhandled_keys(buttons: Iterable[MenuButton], registered: Iterable[str]) -> list[str]:
    """Keys of buttons that send a key to the bot but that no handler knows."""
    known = set(registered)
    return [b.key for b in _leaves(buttons) if b.type not in ("view", "miniprogram") and b.key not in known]


def describe(menu: dict[str, Any]) -> list[str]:
    """WeChat's menu (from menu/get or our payload) as indented lines, for the terminal."""
    lines: list[str] = []

    def what(item: dict[str, Any]) -> str:
        kind = item.get("type", "")
        if kind == "view":
            return f"打开链接 {item.get('url', '')}"
        if kind == "miniprogram":
            return f"打开小程序 {item.get('appid', '')}"
        label = {"click": "点击", "scancode_waitmsg": "扫码（等待回复）", "scancode_push": "扫码"}.get(kind, kind)
        return f"{label} → {item.get('key', '')}"

    for top in menu.get("button", []):
        subs = top.get("sub_button") or []
        if isinstance(subs, dict):  # get_current_selfmenu_info wraps them as {"list": [...]}
            subs = subs.get("list", [])
        lines.append(top["name"] if subs else f"{top['name']}：{what(top)}")
        lines.extend(f"  └ {sub['name']}：{what(sub)}" for sub in subs)
    return lines
