"""Webhook trust (issue 11): an empty token never answers (item 2), a plaintext
signature cannot carry another body (item 7), attacker-chosen values never reach metric
labels or log lines raw, and a client that hangs up mid-body is one warning (item 9)."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from urllib.parse import urlencode

from sqlmodel import select
from starlette.testclient import TestClient

from bot.app import create_app
from bot.store import BindAttempt, CallbackNonce, Member, ProcessedMessage, create_store
from scheduler.runner import JobRunner
from tests.conftest import CORP_ID, SHANGHAI, Signed, build_env, random_aes_key, sha1_sorted, text_xml

# ---------------------------------------------------------------- item 2: empty token


def test_wechat_with_an_empty_token_never_answers(tmp_path, clock):
    """With no token, anyone could compute the signature: sha1 of timestamp and nonce."""
    env = build_env(tmp_path, clock, bank=None, BRANCHBOT__WECHAT__TOKEN="")
    with env.client:
        ts, nonce = str(int(clock().timestamp())), "777"
        forged = sha1_sorted("", ts, nonce)
        verify = env.client.get(
            "/wechat?" + urlencode({"signature": forged, "timestamp": ts, "nonce": nonce, "echostr": "e-1"})
        )
        assert verify.status_code == 503 and "e-1" not in verify.text
        query = urlencode({"signature": forged, "timestamp": ts, "nonce": nonce, "openid": "o-evil"})
        body = text_xml("o-evil", "绑定 王书记 0001", int(ts), 123456)
        response = env.client.post(f"/wechat?{query}", content=body.encode())
        assert response.status_code == 503
        assert env.count(ProcessedMessage) == 0 and env.count(BindAttempt) == 0
        with env.store.session() as db:
            assert all(m.openid is None for m in db.exec(select(Member)).all())


def test_wecom_with_an_empty_token_never_answers(tmp_path, clock):
    env = build_env(
        tmp_path,
        clock,
        bank=None,
        BRANCHBOT__WECOM__CORP_ID=CORP_ID,
        BRANCHBOT__WECOM__TOKEN="",
        BRANCHBOT__WECOM__ENCODING_AES_KEY=random_aes_key(),
    )
    with env.client:
        ts = str(int(clock().timestamp()))
        query = urlencode(
            {"msg_signature": sha1_sorted("", ts, "1", "x"), "timestamp": ts, "nonce": "1", "echostr": "x"}
        )
        assert env.client.get(f"/wecom?{query}").status_code in (403, 404, 503)
        assert env.client.post(f"/wecom?{query}", content=b"<xml><Encrypt>x</Encrypt></xml>").status_code in (
            403,
            404,
            503,
        )
        assert env.count(ProcessedMessage) == 0


# ---------------------------------------------------------------- item 7: replays


def test_plain_mode_refuses_a_captured_signature_with_another_body(env):
    user = env.wechat("o-victim")
    captured = user.text_request("帮助")
    assert user.post(captured).status_code == 200
    forged_body = text_xml("o-attacker", "绑定 王书记 0001", int(env.clock().timestamp()), 424242)
    response = user.post(Signed(captured.query, forged_body))
    assert response.status_code == 403 and "nonce" in response.text
    assert env.count(ProcessedMessage) == 1 and env.count(BindAttempt) == 0


def test_plain_mode_answers_a_byte_identical_retry_from_the_record(env):
    user = env.wechat("o-retry")
    signed = user.text_request("帮助")
    first = user.post(signed)
    again = user.post(signed)  # WeChat resends the very same request
    assert first.status_code == again.status_code == 200

    # The same recorded reply; only the envelope's CreateTime is the moment it was sent.
    def unstamped(body: str) -> str:
        return re.sub(r"<CreateTime>\d+</CreateTime>", "", body)

    assert unstamped(first.text) == unstamped(again.text) and "绑定" in user.reply_text(first.text)
    assert env.count(ProcessedMessage) == 1 and env.count(CallbackNonce) == 1


def test_nonces_are_shared_by_every_instance_on_the_database(env):
    """A second app on the same database (another instance) refuses the replay too."""
    other_store = create_store(env.config.database.url)
    other = TestClient(create_app(env.config, other_store, env.clock))
    try:
        user = env.wechat("o-victim")
        captured = user.text_request("帮助")
        assert user.post(captured).status_code == 200
        forged = text_xml("o-attacker", "积分", int(env.clock().timestamp()), 535353)
        with other:
            assert other.post(captured.url, content=forged.encode()).status_code == 403
            assert other.post(captured.url, content=captured.body.encode()).status_code == 200  # the retry
    finally:
        other_store.dispose()
    assert env.count(ProcessedMessage) == 1


def test_housekeeping_prunes_nonces_outside_the_replay_window(env):
    user = env.wechat("o-old")
    user.post(user.text_request("帮助"))
    env.clock.advance(minutes=9)
    recent = user.text_request("积分")
    user.post(recent)
    assert env.count(CallbackNonce) == 2
    runner = JobRunner(env.store, env.config, env.clock)
    result = runner.run(
        "housekeeping", env.clock().astimezone(SHANGHAI) + timedelta(minutes=2)
    )  # 11 and 2 minutes later
    assert result.ran, result.detail
    with env.store.session() as db:
        kept = db.exec(select(CallbackNonce)).all()
    assert len(kept) == 1  # the window is 300 s: nonces seen over 600 s ago can no longer be replayed
    # The recent nonce is still guarded.
    forged = text_xml("o-old", "绑定 王书记 0001", int(env.clock().timestamp()), 626262)
    assert user.post(Signed(recent.query, forged)).status_code == 403


def test_safe_mode_needs_no_nonce_record(safe_env):
    """msg_signature covers the ciphertext: another body fails the signature anyway."""
    user = safe_env.wechat("o-safe")
    assert "绑定" in user.say("帮助")
    assert safe_env.count(CallbackNonce) == 0


# ---------------------------------------------------------------- item 9: labels and logs


def raw_post(env, openid: str, msg_type: str, msg_id: int):  # type: ignore[no-untyped-def]
    user = env.wechat(openid)
    now = int(env.clock().timestamp())
    xml = (
        f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>"
        f"<Content><![CDATA[x]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
    return user.post(user.sign(xml))


def test_metric_labels_come_from_a_fixed_set(env):
    for n in range(40):
        assert raw_post(env, "o-labels", f"kind{n}_attacker", 700_000 + n).status_code == 200
    metrics = env.client.get("/metrics").text
    assert "attacker" not in metrics
    kinds = set(re.findall(r'branchbot_messages_total\{[^}]*kind="([^"]*)"', metrics))
    assert kinds <= {"text", "image", "voice", "video", "shortvideo", "location", "link", "file", "event", "other", "-"}
    assert 'kind="other"' in metrics


def test_a_newline_in_a_logged_value_cannot_forge_a_log_line(env, caplog):
    caplog.set_level(logging.INFO)
    forged = "text\n2026-11-10 09:00:00 INFO branchbot.app admin logged in\r"
    assert raw_post(env, "o-log", forged, 710_001).status_code == 200
    assert raw_post(env, "o-log", "x" * 5000, 710_002).status_code == 200
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("branchbot")]
    assert messages and all("\n" not in m and "\r" not in m for m in messages), messages
    assert all(len(m) < 400 for m in messages), [len(m) for m in messages]
    assert any("\\n2026-11-10" in m for m in messages), messages  # escaped, still readable


def test_an_unsigned_client_hanging_up_mid_body_is_one_warning(env, caplog):
    """No traceback: the request stream ends with a disconnect before the body does."""
    app = env.client.app
    ts = str(int(env.clock().timestamp()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/wechat",
        "raw_path": b"/wechat",
        "root_path": "",
        "query_string": f"signature=x&timestamp={ts}&nonce=1".encode(),
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", b"5000")],
        "client": ("203.0.113.9", 4000),
        "server": ("127.0.0.1", 8000),
    }
    incoming = [{"type": "http.request", "body": b"<xml><ToUserName>", "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive():  # type: ignore[no-untyped-def]
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    caplog.set_level(logging.INFO)
    asyncio.run(app(scope, receive, send))
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and problems[0].levelno == logging.WARNING, [r.getMessage() for r in problems]
    assert "hung up" in problems[0].getMessage() and problems[0].exc_info is None
    assert env.count(ProcessedMessage) == 0
