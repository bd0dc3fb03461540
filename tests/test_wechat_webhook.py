"""/wechat: URL verification, the three modes, and every refusal (nothing recorded)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from bot.store import ProcessedMessage
from tests.conftest import TOKEN, build_env, random_aes_key, sha1_sorted, text_xml


def verify_query(env, signature: str | None = None, timestamp: int | None = None) -> str:
    ts = str(timestamp if timestamp is not None else int(env.clock().timestamp()))
    sig = signature or sha1_sorted(TOKEN, ts, "123")
    return urlencode({"signature": sig, "timestamp": ts, "nonce": "123", "echostr": "echo-5e8f"})


def test_url_verification_echoes_echostr(env):
    response = env.client.get("/wechat?" + verify_query(env))
    assert response.status_code == 200
    assert response.text == "echo-5e8f"


def test_url_verification_with_bad_signature_is_refused(env):
    response = env.client.get("/wechat?" + verify_query(env, signature="0" * 40))
    assert response.status_code == 403
    assert "echo-5e8f" not in response.text


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_text_message_gets_a_reply(tmp_path, clock, mode):
    env = build_env(tmp_path, clock, BRANCHBOT__WECHAT__MODE=mode, BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key())
    with env.client:
        user = env.wechat("o-guest")
        response = user.post(user.text_request("帮助"))
        assert response.status_code == 200
        if mode == "safe":
            assert "<Encrypt>" in response.text and "帮助" not in response.text
        assert "绑定 姓名 手机号后四位" in user.reply_text(response.text)


def test_compatible_mode_accepts_only_encrypted_bodies(tmp_path, clock):
    """WeChat sends compatible-mode callbacks encrypted (the plaintext beside the
    Encrypt element); a plaintext-only request, whose signature leaves the body
    unsigned, is refused once an AES key is set."""
    env = build_env(
        tmp_path, clock, BRANCHBOT__WECHAT__MODE="compatible", BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key()
    )
    with env.client:
        plain = env.wechat("o-a", mode="plain")
        response = plain.post(plain.text_request("帮助"))
        assert response.status_code == 403 and "plaintext" in response.text
        encrypted = env.wechat("o-b", mode="safe")
        signed = encrypted.text_request("帮助")
        # Compatible mode: the plaintext fields travel beside <Encrypt>; only the ciphertext counts.
        both = signed.body.replace(
            "<xml>",
            "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[o-forged]]></FromUserName>",
            1,
        )
        response = encrypted.post(type(signed)(signed.query, both))
        assert response.status_code == 200 and "<Encrypt>" in response.text
        assert "绑定" in encrypted.reply_text(response.text)
        assert env.count(ProcessedMessage) == 1


def test_safe_mode_checks_msg_signature_not_signature(safe_env):
    user = safe_env.wechat("o-guest")
    signed = user.text_request("帮助")
    # A correct `signature` but a forged `msg_signature` must be refused.
    forged = re.sub(r"msg_signature=[0-9a-f]+", "msg_signature=" + "1" * 40, signed.query)
    assert user.post(type(signed)(forged, signed.body)).status_code == 403
    # A plaintext request (no encrypt_type) is refused outright in safe mode.
    plain = user.sign(text_xml("o-guest", "帮助", int(safe_env.clock().timestamp()), 99))
    plain_query = re.sub(r"&encrypt_type=aes&msg_signature=[0-9a-f]+", "", plain.query)
    assert user.post(type(signed)(plain_query, text_xml("o-guest", "帮助", 1, 99))).status_code == 403
    assert safe_env.count(ProcessedMessage) == 0


def test_bad_signature_is_refused_and_nothing_recorded(env):
    user = env.wechat("o-guest")
    signed = user.text_request("帮助")
    bad = re.sub(r"signature=[0-9a-f]+", "signature=" + "f" * 40, signed.query, count=1)
    response = user.post(type(signed)(bad, signed.body))
    assert response.status_code == 403
    assert env.count(ProcessedMessage) == 0


def test_stale_timestamp_is_refused(env):
    user = env.wechat("o-guest")
    stale = int(env.clock().timestamp()) - 301
    signed = user.sign(text_xml("o-guest", "帮助", stale, 77), timestamp=stale)
    assert user.post(signed).status_code == 403
    assert env.count(ProcessedMessage) == 0
    fresh = int(env.clock().timestamp()) - 299
    assert user.post(user.sign(text_xml("o-guest", "帮助", fresh, 78), timestamp=fresh)).status_code == 200


def test_replay_window_zero_disables_the_check(tmp_path, clock):
    env = build_env(tmp_path, clock, BRANCHBOT__WECHAT__REPLAY_WINDOW="0")
    with env.client:
        user = env.wechat("o-guest")
        old = int(env.clock().timestamp()) - 86_400
        assert user.post(user.sign(text_xml("o-guest", "帮助", old, 5), timestamp=old)).status_code == 200


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o-x]]></FromUserName>
<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""


def test_entity_bomb_is_refused(env, safe_env):
    user = env.wechat("o-x")
    assert user.post(user.sign(BILLION_LAUGHS)).status_code == 400
    assert env.count(ProcessedMessage) == 0
    # Inside the encrypted envelope too.
    safe_user = safe_env.wechat("o-x")
    assert safe_user.post(safe_user.sign(BILLION_LAUGHS)).status_code == 400
    assert safe_env.count(ProcessedMessage) == 0


def test_oversize_body_is_refused(env):
    user = env.wechat("o-guest")
    huge = text_xml("o-guest", "答" * 30_000, int(env.clock().timestamp()), 3)
    assert len(huge.encode()) > 64 * 1024
    assert user.post(user.sign(huge)).status_code == 400
    assert env.count(ProcessedMessage) == 0


@pytest.mark.parametrize(
    "body",
    [
        "<xml><FromUserName>o</FromUserName",  # truncated
        "not xml at all",
        "<xml><MsgType>text</MsgType></xml>",  # no sender
        "<xml><ToUserName>a</ToUserName><FromUserName>o</FromUserName><CreateTime>x1</CreateTime><MsgType>text</MsgType></xml>",
        "<xml><FromUserName><a>nested</a></FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
        "<other/>",
        "",
    ],
)
def test_malformed_xml_is_refused(env, body):
    user = env.wechat("o-guest")
    assert user.post(user.sign(body)).status_code == 400
    assert env.count(ProcessedMessage) == 0
    assert "绑定" in user.say("帮助")  # and the process keeps serving


def test_undecryptable_envelope_is_refused(safe_env):
    for ciphertext in ("not-base64!!", "QUJD", "A" * 64):
        ts = str(int(safe_env.clock().timestamp()))
        query = urlencode(
            {
                "timestamp": ts,
                "nonce": "9",
                "encrypt_type": "aes",
                "signature": sha1_sorted(TOKEN, ts, "9"),
                "msg_signature": sha1_sorted(TOKEN, ts, "9", ciphertext),
            }
        )
        body = f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{ciphertext}]]></Encrypt></xml>"
        response = safe_env.client.post(f"/wechat?{query}", content=body.encode())
        assert response.status_code == 400, ciphertext
    assert safe_env.count(ProcessedMessage) == 0


def test_unknown_message_kinds_get_a_hint(env):
    user = env.wechat("o-guest")
    created = int(env.clock().timestamp())
    for kind, extra in [
        ("image", "<PicUrl><![CDATA[http://x/1.jpg]]></PicUrl><MediaId><![CDATA[m]]></MediaId>"),
        ("voice", "<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format>"),
        (
            "location",
            "<Location_X>23.1</Location_X><Location_Y>113.3</Location_Y><Scale>20</Scale><Label><![CDATA[x]]></Label>",
        ),
    ]:
        xml = (
            f"<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o-guest]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{extra}"
            f"<MsgId>{next(env.msg_ids)}</MsgId></xml>"
        )
        response = user.post(user.sign(xml))
        assert response.status_code == 200
        assert "文字" in user.reply_text(response.text)


def test_cdata_terminator_in_reply_is_escaped(env):
    user = env.wechat("o-guest")
    response = user.post(user.text_request("]]><evil/>"))
    assert response.status_code == 200
    import xmltodict

    parsed = xmltodict.parse(response.text)["xml"]
    assert "evil" not in parsed  # no element was injected into the reply
    assert "]]><evil/>" in parsed["Content"]


def test_subscribe_and_unsubscribe(env):
    user = env.wechat("o-li")
    assert "绑定" in user.event("subscribe")
    user.say("绑定 李明 0002")
    user.event("unsubscribe")
    with env.store.session() as db:
        from sqlmodel import select

        from bot.store import Member

        member = db.exec(select(Member).where(Member.name == "李明")).one()
        assert member.subscribed is False
    env.clock.advance(seconds=5)  # same sender + CreateTime + event would be a retry
    assert "欢迎回来" in user.event("subscribe")


def test_menu_click_runs_the_command(env):
    user = env.wechat("o-li")
    user.say("绑定 李明 0002")
    assert "积分" in user.event("CLICK", key="POINTS")


def test_healthz_and_metrics(env):
    assert env.client.get("/healthz").json() == {"status": "ok"}
    env.wechat("o-guest").say("帮助")
    metrics = env.client.get("/metrics").text
    assert 'branchbot_messages_total{channel="wechat",kind="text",outcome="ok"} 1.0' in metrics
    assert (
        "branchbot_handler_seconds_bucket" in metrics
        and "branchbot_deliveries" in metrics
        and "branchbot_job_runs" in metrics
    )


@pytest.mark.parametrize("nonce", ["12345", " ", "<&>"])
def test_odd_sender_and_nonce_still_get_a_verifiable_reply(safe_env, nonce):
    """A signed request is genuine whatever its nonce and OpenID hold; the reply must
    still be valid XML that verifies and decrypts (the reply's nonce is ours to choose)."""
    user = safe_env.wechat("o]]>odd<&")
    xml = text_xml("SENDER", "帮助", int(safe_env.clock().timestamp()), next(safe_env.msg_ids))
    signed = user.sign(xml.replace("SENDER", "o]]]]><![CDATA[>odd<&"), nonce=nonce)
    response = user.post(signed)
    assert response.status_code == 200, response.text
    assert "绑定" in user.reply_text(response.text)  # verified with MsgSignature, decrypted, parsed
