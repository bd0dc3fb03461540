"""The notice rules' one home (bot.outbox.campaigns): the 2048-byte limit is the same at
its edge whether a notice comes from chat, the CLI or the console."""

from __future__ import annotations

from sqlmodel import select

from bot.cli import main
from bot.outbox.campaigns import MAX_BYTES, text_problem
from bot.store.models import Campaign
from tests.support.console import client_for, csrf_of

AT_LIMIT = "学" * 682 + "ab"  # 3 × 682 + 2 = 2048 bytes in UTF-8
OVER_LIMIT = AT_LIMIT + "c"


def test_the_limit_counts_utf8_bytes_not_characters():
    assert len(AT_LIMIT.encode()) == MAX_BYTES and len(OVER_LIMIT.encode()) == MAX_BYTES + 1
    assert text_problem(AT_LIMIT) is None
    assert text_problem(OVER_LIMIT) == (
        "通知内容过长：微信单条消息最多 2048 字节（约 680 个汉字），当前 2049 字节。请精简或分几次发送。"
    )


def test_chat_takes_2048_bytes_and_refuses_2049(env):
    wang = env.wechat("o-wang")
    assert "绑定成功" in wang.say("绑定 王书记 0001")
    assert "当前 2049 字节" in wang.say("通知 " + OVER_LIMIT)
    preview = wang.say("通知 " + AT_LIMIT)
    assert "即将发送给第一党支部" in preview and "过长" not in preview
    assert "已发送" in wang.say("确认")


def test_console_takes_2048_bytes_and_refuses_2049(env):
    wang = client_for(env, "王书记")
    csrf = csrf_of(wang, "/console/notices")
    over = wang.post(
        "/console/notices/preview", data={"csrf": csrf, "text": OVER_LIMIT}, headers={"HX-Request": "true"}
    )
    assert "当前 2049 字节" in over.text
    assert wang.post("/console/notices/send", data={"csrf": csrf, "text": OVER_LIMIT}).status_code == 400
    at = wang.post("/console/notices/preview", data={"csrf": csrf, "text": AT_LIMIT}, headers={"HX-Request": "true"})
    assert at.status_code == 200 and "过长" not in at.text
    sent = wang.post("/console/notices/send", data={"csrf": csrf, "text": AT_LIMIT}, follow_redirects=False)
    assert sent.status_code == 303
    with env.store.session() as db:
        assert db.exec(select(Campaign.text).where(Campaign.kind == "broadcast")).all() == [AT_LIMIT]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_takes_2048_bytes_and_refuses_2049(tmp_path, no_env_overrides, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite:///cli.db"\n', encoding="utf-8")
    run(capsys, "init", "--demo", "--config", str(cfg))
    code, _, err = run(capsys, "broadcast", OVER_LIMIT, "--yes", "--config", str(cfg))
    assert code == 2 and "当前 2049 字节" in err
    code, out, _ = run(capsys, "broadcast", AT_LIMIT, "--yes", "--config", str(cfg))
    assert code == 0 and "已创建通知 #1" in out
