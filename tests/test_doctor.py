"""`branchbot doctor` against the fake WeChat API on loopback, and `serve`'s refusals.

Doctor must fail (exit 1) whenever production would: a token request WeChat refuses
(40164 IP whitelist, 40125 secret, 40013 app id), a missing template, a WeCom app that
cannot send, missing push credentials, an unreachable or uninitialised database, the
simulator on a public address, the public demo token, a malformed robot key. It must
never print a secret, and never create a database.
"""

from __future__ import annotations

import pytest

from bot.cli import main
from tests.conftest import APP_ID, CORP_ID, TOKEN, random_aes_key
from tests.support.fake_wechat_api import FakeWeChatApi

SECRET = "s3cr3t0123456789abcdef0123456789"
WECOM_SECRET = "wecomSecretValue_0123456789"
ROBOT_KEY = "693a91f6-7a2b-4bc4-97a0-0ec2cfa5aa1b"


@pytest.fixture(scope="module")
def api():
    with FakeWeChatApi() as fake:
        yield fake


@pytest.fixture
def healthy(api):
    api.heal()
    api.state.templates = [{"template_id": "TPL_NOTICE", "title": "支部通知"}]
    api.state.agents = {
        "1000002": {
            "agentid": 1000002,
            "name": "学习助手",
            "close": 0,
            "allow_userinfos": {"user": [{"userid": "zhangsan"}]},
        }
    }
    yield api
    api.heal()


@pytest.fixture
def production(tmp_path, no_env_overrides, monkeypatch, healthy):
    """A production configuration (safe mode, OA and WeCom, simulator off) on the fake API."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///prod.db"\n[simulator]\nenabled = false\n'
        f'[wechat]\napp_id = "{APP_ID}"\nmode = "safe"\napi_base = "{healthy.base}"\ntemplate_id = "TPL_NOTICE"\n'
        f'[wecom]\ncorp_id = "{CORP_ID}"\nagent_id = "1000002"\napi_base = "{healthy.base}"\n',
        encoding="utf-8",
    )
    env = {
        "BRANCHBOT__WECHAT__TOKEN": TOKEN,
        "BRANCHBOT__WECHAT__ENCODING_AES_KEY": random_aes_key(),
        "BRANCHBOT__WECHAT__APP_SECRET": SECRET,
        "BRANCHBOT__WECOM__TOKEN": "wecomtoken",
        "BRANCHBOT__WECOM__ENCODING_AES_KEY": random_aes_key(),
        "BRANCHBOT__WECOM__SECRET": WECOM_SECRET,
        "BRANCHBOT__ROBOTS__KEYS": f'{{"演示第一党支部": "{ROBOT_KEY}"}}',
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["init", "--demo", "--config", str(cfg)]) == 0
    return cfg


def doctor(capsys, cfg, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["doctor", "--config", str(cfg), *extra])
    out, err = capsys.readouterr()
    return code, out + err


def test_healthy_production_passes(production, capsys):
    code, out = doctor(capsys, production)
    assert code == 0, out
    assert "公众号 access_token 获取成功" in out and "模板消息 TPL_NOTICE「支部通知」存在" in out
    assert "企业微信应用「学习助手」可以发送消息" in out and "数据库可连接" in out and "✓ 检查通过" in out


@pytest.mark.parametrize(
    "errcode, errmsg, expected",
    [
        (40164, "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 1", ["IP白名单", "203.0.113.7"]),
        (40125, "invalid appsecret", ["AppSecret 不正确", "BRANCHBOT__WECHAT__APP_SECRET"]),
        (40013, "invalid appid", ["AppID 不正确", "BRANCHBOT__WECHAT__APP_ID"]),
    ],
)
def test_token_refusals_fail_with_the_fix(production, healthy, capsys, errcode, errmsg, expected):
    healthy.fail("token", errcode, errmsg)
    code, out = doctor(capsys, production)
    assert code == 1, out
    assert str(errcode) in out and all(text in out for text in expected), out
    assert "检查通过" not in out


def test_missing_template_and_unusable_wecom_app_fail(production, healthy, capsys):
    healthy.state.templates = [{"template_id": "OTHER", "title": "别的模板"}]
    healthy.state.agents["1000002"]["close"] = 1
    code, out = doctor(capsys, production)
    assert code == 1 and "模板 TPL_NOTICE 不在本公众号的模板列表中" in out and "已停用" in out
    healthy.state.agents = {}
    code, out = doctor(capsys, production)
    assert code == 1 and "40056" in out and "AgentId 1000002" in out
    healthy.fail("gettoken", 60020, "not allow to access from your ip, from ip: 198.51.100.9")
    code, out = doctor(capsys, production)
    assert code == 1 and "企业可信IP" in out and "198.51.100.9" in out


def test_template_permission_missing_fails(production, healthy, capsys):
    healthy.fail("templates", 48001, "api unauthorized")
    code, out = doctor(capsys, production)
    assert code == 1 and "48001" in out and "认证的服务号" in out


def test_empty_app_credentials_fail_when_pushes_are_needed(production, capsys, monkeypatch):
    """Once 「✓ 检查通过」 with app_id and app_secret empty; every push then failed."""
    monkeypatch.setenv("BRANCHBOT__WECHAT__APP_SECRET", "")
    monkeypatch.setenv("BRANCHBOT__WECHAT__MODE", "plain")
    monkeypatch.setenv("BRANCHBOT__WECHAT__ENCODING_AES_KEY", "")
    code, out = doctor(capsys, production)
    assert code == 1 and "wechat.app_secret 为空" in out and "BRANCHBOT__WECHAT__APP_SECRET" in out
    assert "检查通过" not in out


def test_unreachable_api_fails(production, capsys, monkeypatch):
    monkeypatch.setenv("BRANCHBOT__WECHAT__API_BASE", "http://127.0.0.1:9")
    code, out = doctor(capsys, production)
    assert code == 1 and "无法访问 http://127.0.0.1:9" in out


def test_malformed_robot_key_fails(production, capsys, monkeypatch):
    monkeypatch.setenv(
        "BRANCHBOT__ROBOTS__KEYS", '{"演示第一党支部": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"}'
    )
    code, out = doctor(capsys, production)
    assert code == 1 and "只需填写地址中 key= 后面的部分" in out
    monkeypatch.setenv("BRANCHBOT__ROBOTS__KEYS", '{"演示第一党支部": "12345"}')
    code, out = doctor(capsys, production)
    assert code == 1 and "key 格式不对" in out


def test_demo_passes_with_a_note(tmp_path, no_env_overrides, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[database]\nurl = "sqlite:///demo.db"\n[wechat]\ntoken = "branchbotdemo"\n[simulator]\nenabled = true\n',
        encoding="utf-8",
    )
    assert main(["init", "--demo", "--config", str(cfg)]) == 0
    code, out = doctor(capsys, cfg)
    assert code == 0 and "演示模式" in out and "检查通过" in out


def test_demo_token_and_public_simulator_fail(tmp_path, no_env_overrides, capsys, monkeypatch):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[database]\nurl = "sqlite:///demo.db"\n[wechat]\ntoken = "branchbotdemo"\n[simulator]\nenabled = false\n',
        encoding="utf-8",
    )
    assert main(["init", "--config", str(cfg)]) == 0
    code, out = doctor(capsys, cfg)
    assert code == 1 and "公开的演示令牌" in out
    monkeypatch.setenv("BRANCHBOT__SIMULATOR__ENABLED", "true")
    monkeypatch.setenv("BRANCHBOT__SERVER__HOST", "0.0.0.0")
    code, out = doctor(capsys, cfg)
    assert code == 1 and "聊天模拟器只能在本机地址上运行" in out


def test_doctor_never_creates_a_database(tmp_path, no_env_overrides, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "conf" / "bb.toml"
    cfg.parent.mkdir()
    cfg.write_text('[database]\nurl = "sqlite:///data/none.db"\n[wechat]\ntoken = "abc123"\n', encoding="utf-8")
    code, out = doctor(capsys, cfg)
    assert code == 1 and "数据库文件不存在" in out and "branchbot init" in out
    assert not (cfg.parent / "data").exists() and not (tmp_path / "data").exists()
    code, out = doctor(capsys, cfg)  # also before the subcommand
    assert main(["--config", str(cfg), "doctor"]) == 1
    assert not (cfg.parent / "data").exists()


def test_unreachable_postgres_is_reported_without_the_password(tmp_path, no_env_overrides, capsys, monkeypatch):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[wechat]\ntoken = "abc123"\n', encoding="utf-8")
    monkeypatch.setenv("BRANCHBOT__DATABASE__URL", "postgresql+psycopg://bb:Pa%40ssw0rd%3Aq@127.0.0.1:9/bb")
    code, out = doctor(capsys, cfg, "--show-config")
    assert code == 1 and "数据库无法连接" in out and "bb:******@127.0.0.1:9/bb" in out
    assert "Pa%40ssw0rd" not in out and "Pa@ssw0rd" not in out and "ssw0rd" not in out
    # A raw @ in the password is refused by name, without echoing the value.
    monkeypatch.setenv("BRANCHBOT__DATABASE__URL", "postgresql+psycopg://bb:Pa@ssw0rd@127.0.0.1:9/bb")
    code, out = doctor(capsys, cfg)
    assert code == 2 and "database.url" in out and "%40" in out and "ssw0rd" not in out


# ---------------------------------------------------------------- serve refuses


def serve(capsys, cfg) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["serve", "--config", str(cfg)])
    out, err = capsys.readouterr()
    return code, out + err


def test_serve_refuses_an_empty_token_naming_the_key(tmp_path, no_env_overrides, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite:///s.db"\n', encoding="utf-8")
    assert main(["init", "--config", str(cfg)]) == 0
    code, out = serve(capsys, cfg)
    assert code == 2 and "wechat.token 为空" in out and "BRANCHBOT__WECHAT__TOKEN" in out and "服务未启动" in out


def test_serve_refuses_wecom_without_token_or_aes_key(tmp_path, no_env_overrides, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\nurl = "sqlite:///s.db"\n[wechat]\ntoken = "abc123"\n[wecom]\ncorp_id = "{CORP_ID}"\ntoken = "abc123"\n',
        encoding="utf-8",
    )
    assert main(["init", "--config", str(cfg)]) == 0
    code, out = serve(capsys, cfg)
    assert code == 2 and "wecom.encoding_aes_key 为空" in out and "BRANCHBOT__WECOM__ENCODING_AES_KEY" in out


def test_serve_refuses_the_simulator_off_loopback_or_beside_real_credentials(
    tmp_path, no_env_overrides, capsys, monkeypatch
):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[database]\nurl = "sqlite:///s.db"\n[wechat]\ntoken = "abc123"\n[simulator]\nenabled = true\n'
        '[server]\nhost = "0.0.0.0"\n',
        encoding="utf-8",
    )
    assert main(["init", "--config", str(cfg)]) == 0
    code, out = serve(capsys, cfg)
    assert code == 2 and "聊天模拟器只能在本机地址上运行" in out and "BRANCHBOT__SIMULATOR__ENABLED=false" in out
    monkeypatch.setenv("BRANCHBOT__SERVER__HOST", "127.0.0.1")
    monkeypatch.setenv("BRANCHBOT__WECHAT__APP_ID", APP_ID)
    monkeypatch.setenv("BRANCHBOT__WECHAT__MODE", "safe")
    monkeypatch.setenv("BRANCHBOT__WECHAT__ENCODING_AES_KEY", random_aes_key())
    code, out = serve(capsys, cfg)
    assert code == 2 and "wechat.encoding_aes_key" in out and "不能同时开启聊天模拟器" in out


def test_serve_refuses_the_public_demo_token_in_production(tmp_path, no_env_overrides, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[database]\nurl = "sqlite:///s.db"\n[wechat]\ntoken = "branchbotdemo"\n[simulator]\nenabled = false\n',
        encoding="utf-8",
    )
    assert main(["init", "--config", str(cfg)]) == 0
    code, out = serve(capsys, cfg)
    assert code == 2 and "公开的演示令牌" in out


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path, no_env_overrides, capsys):
    import socket

    cfg = tmp_path / "config.toml"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg.write_text(
            f'[database]\nurl = "sqlite:///s.db"\n[wechat]\ntoken = "abc123"\n[server]\nport = {port}\n',
            encoding="utf-8",
        )
        assert main(["init", "--config", str(cfg)]) == 0
        code, out = serve(capsys, cfg)
    assert code == 2 and f"端口 {port} 已被占用" in out and "BRANCHBOT__SERVER__PORT" in out
    assert "正在监听" not in out and "Errno" not in out and "Traceback" not in out
