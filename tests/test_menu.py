"""`branchbot menu push` / `menu show` against the fake WeChat API, and every menu key works."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.config import load_config
from bot.menu import menu_payload, unhandled_keys
from handlers import build_registry
from tests.conftest import APP_ID
from tests.support.fake_wechat_api import FakeWeChatApi


@pytest.fixture
def api():
    with FakeWeChatApi() as fake:
        yield fake


@pytest.fixture
def cfg(tmp_path, no_env_overrides, monkeypatch, api):
    path = tmp_path / "config.toml"
    path.write_text(f'[wechat]\napp_id = "{APP_ID}"\napi_base = "{api.base}"\n', encoding="utf-8")
    monkeypatch.setenv("BRANCHBOT__WECHAT__APP_SECRET", "menusecret0123456789")
    return path


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


def test_default_menu_is_pushed_and_shown(cfg, api, capsys):
    code, out = run(capsys, "menu", "show", "--config", str(cfg))
    assert code == 0 and "没有通过接口设置的菜单" in out
    code, out = run(capsys, "menu", "push", "--config", str(cfg))
    assert code == 0 and "菜单已提交" in out, out
    menu = api.state.menu
    assert [b["name"] for b in menu["button"]] == ["答题", "积分·排行", "更多"]
    more = {b["name"]: b for b in menu["button"][2]["sub_button"]}
    assert list(more) == ["练习", "错题", "扫码签到", "帮助"]
    assert more["扫码签到"] == {"type": "scancode_waitmsg", "name": "扫码签到", "key": "CHECKIN_SCAN"}
    code, out = run(capsys, "menu", "show", "--config", str(cfg))
    assert code == 0 and "答题：点击 → QUIZ" in out and "扫码签到：扫码（等待回复） → CHECKIN_SCAN" in out


def test_menu_is_sent_as_utf8_text_not_escapes(cfg, api, capsys):
    """WeChat shows \\uXXXX escapes literally in menu names."""
    assert main(["menu", "push", "--config", str(cfg)]) == 0
    capsys.readouterr()
    assert "扫码签到".encode() in api.state.menu_raw and b"\\u" not in api.state.menu_raw


def test_menu_from_config_and_unknown_keys_refused(cfg, api, capsys):
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + '[[menu.buttons]]\nname = "学习"\nkey = "QUIZ"\n'
        '[[menu.buttons]]\nname = "官网"\ntype = "view"\nurl = "https://example.org/"\n',
        encoding="utf-8",
    )
    code, out = run(capsys, "menu", "push", "--config", str(cfg))
    assert code == 0 and [b["name"] for b in api.state.menu["button"]] == ["学习", "官网"]
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + '[[menu.buttons]]\nname = "未知"\nkey = "NOPE"\n', encoding="utf-8"
    )
    api.state.menu = None
    code, out = run(capsys, "menu", "push", "--config", str(cfg))
    assert code == 2 and "NOPE" in out and "没有对应的功能" in out and api.state.menu is None


def test_menu_config_errors_name_the_button(cfg, capsys):
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + '[[menu.buttons]]\nname = "一个很长的菜单名"\nkey = "QUIZ"\n',
        encoding="utf-8",
    )
    code, out = run(capsys, "menu", "push", "--config", str(cfg))
    assert code == 2 and "menu.buttons" in out and "最多 4 个汉字" in out


def test_menu_refusals_in_chinese(cfg, api, capsys, monkeypatch):
    api.fail("menu_create", 48001, "api unauthorized")
    code, out = run(capsys, "menu", "push", "--config", str(cfg))
    assert code == 2 and "没有自定义菜单接口权限" in out
    api.heal()
    api.fail("token", 40164, "invalid ip 203.0.113.7, not in whitelist")
    code, out = run(capsys, "menu", "push", "--config", str(cfg))
    assert code == 2 and "IP白名单" in out and "203.0.113.7" in out
    monkeypatch.setenv("BRANCHBOT__WECHAT__APP_SECRET", "")
    code, out = run(capsys, "menu", "show", "--config", str(cfg))
    assert code == 2 and "BRANCHBOT__WECHAT__APP_SECRET" in out


def test_every_default_menu_key_is_handled(env):
    """Pressing each click button of the default menu runs a command (not the help fallback)."""
    config = load_config(None, {})
    assert unhandled_keys(config.menu.buttons, build_registry().menu_keys) == []
    user = env.wechat("o-li")
    user.say("绑定 李明 0002")
    expected = {
        "QUIZ": "测试",
        "POINTS": "积分",
        "RANK": "排行",
        "PRACTICE": "练习",
        "REVIEW": "错题",
        "HELP": "党支部学习助手可以",
    }
    payload = json.dumps(menu_payload(config.menu.buttons), ensure_ascii=False)
    for key, word in expected.items():
        assert f'"key": "{key}"' in payload
        reply = user.event("CLICK", key=key)
        assert word in reply, key
        assert key == "HELP" or not reply.startswith("党支部学习助手可以"), key  # not the help fallback
