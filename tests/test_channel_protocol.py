"""The callback protocol both channels share, through the webhooks: Tencent's published
WeCom test vectors, replies that wechatpy (the reference implementation) opens, and the
DOCTYPE refusal inside the XML parser itself (whatever the document's encoding)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WecomCrypto

from bot.store import ProcessedMessage
from tests.conftest import APP_ID, TOKEN, FakeClock, build_env, random_aes_key, sha1_sorted, text_xml

# Tencent's sample (WXBizMsgCrypt, developer.work.weixin.qq.com/document/path/90968).
VECTOR_TOKEN = "QDG6eK"
VECTOR_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
VECTOR_CORP = "wx5823bf96d3bd56c7"
VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
}
MESSAGE_QUERY = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
MESSAGE_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3"
    "TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gs"
    "ijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUa"
    "x5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIG"
    "HBZZIs2pDBS8R07+qN+E7Q=="
)
MESSAGE_BODY = (
    f"<xml><ToUserName><![CDATA[{VECTOR_CORP}]]></ToUserName><Encrypt><![CDATA[{MESSAGE_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)


@pytest.fixture
def vector_env(tmp_path):
    env = build_env(
        tmp_path,
        FakeClock(datetime.fromtimestamp(1409659813, UTC)),
        bank=None,
        BRANCHBOT__WECOM__CORP_ID=VECTOR_CORP,
        BRANCHBOT__WECOM__TOKEN=VECTOR_TOKEN,
        BRANCHBOT__WECOM__ENCODING_AES_KEY=VECTOR_KEY,
    )
    with env.client:
        yield env
    env.store.dispose()


def test_tencent_url_verification_vector(vector_env):
    response = vector_env.client.get(f"/wecom?{urlencode(VERIFY)}")
    assert response.status_code == 200 and response.text == "1616140317555161061"
    forged = VERIFY | {"msg_signature": "0" * 40}
    assert vector_env.client.get(f"/wecom?{urlencode(forged)}").status_code == 403


def test_tencent_message_vector_is_answered_with_a_reply_wechatpy_opens(vector_env):
    response = vector_env.client.post(f"/wecom?{urlencode(MESSAGE_QUERY)}", content=MESSAGE_BODY.encode())
    assert response.status_code == 200, response.text
    assert vector_env.count(ProcessedMessage) == 1  # "hello" from "mycreate", MsgId 4561255354251345929
    outer = xmltodict.parse(response.text)["xml"]
    crypto = WecomCrypto(VECTOR_TOKEN, VECTOR_KEY, VECTOR_CORP)
    reply = xmltodict.parse(
        crypto.decrypt_message(response.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
    )
    assert reply["xml"]["ToUserName"] == "mycreate" and reply["xml"]["FromUserName"] == VECTOR_CORP
    assert reply["xml"]["MsgType"] == "text" and reply["xml"]["Content"]
    # The same bytes with one character of the ciphertext changed: the signature no longer matches.
    tampered = MESSAGE_BODY.replace("RypEv", "RypEw")
    before = vector_env.count(ProcessedMessage)
    assert vector_env.client.post(f"/wecom?{urlencode(MESSAGE_QUERY)}", content=tampered.encode()).status_code == 403
    assert vector_env.count(ProcessedMessage) == before


def _signed_query(env, nonce: str) -> str:
    ts = str(int(env.clock().timestamp()))
    return urlencode({"signature": sha1_sorted(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce})


def test_doctype_in_utf16_is_refused_by_the_parser(env):
    """The byte-level check cannot see '<!DOCTYPE' spelt in UTF-16; the parser refuses it."""
    created = int(env.clock().timestamp())
    declared = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml>' + text_xml("o-utf16", "帮助", created, 77)
    body = declared.encode("utf-16")
    assert b"DOCTYPE" not in body
    response = env.client.post(f"/wechat?{_signed_query(env, '9123')}", content=body)
    assert response.status_code == 400 and "DOCTYPE" in response.text
    assert env.count(ProcessedMessage) == 0
    # The same message without the declaration, in UTF-16 too, is an ordinary message.
    plain = ('<?xml version="1.0" encoding="UTF-16"?>' + text_xml("o-utf16", "帮助", created, 78)).encode("utf-16")
    response = env.client.post(f"/wechat?{_signed_query(env, '9124')}", content=plain)
    assert response.status_code == 200 and env.count(ProcessedMessage) == 1


def test_a_plaintext_not_in_utf8_inside_the_envelope_is_refused(tmp_path, clock):
    """WeChat encrypts UTF-8; anything else (here UTF-16 carrying a DOCTYPE the byte check
    cannot see) is refused before it reaches the parser, as wechatpy refused it."""
    env = build_env(
        tmp_path, clock, bank=None, BRANCHBOT__WECHAT__MODE="safe", BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key()
    )
    with env.client:
        created = int(env.clock().timestamp())
        inner = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml>' + text_xml("o-utf16", "帮助", created, 79)
        crypto = WeChatCrypto(TOKEN, env.aes_key, APP_ID)
        from wechatpy.crypto import PrpCrypto

        encrypted = PrpCrypto(crypto.key).encrypt(inner.encode("utf-16"), APP_ID).decode()
        ts, nonce = str(created), "4242"
        query = urlencode(
            {
                "signature": sha1_sorted(TOKEN, ts, nonce),
                "msg_signature": sha1_sorted(TOKEN, ts, nonce, encrypted),
                "timestamp": ts,
                "nonce": nonce,
                "encrypt_type": "aes",
            }
        )
        body = f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        response = env.client.post(f"/wechat?{query}", content=body.encode())
        assert response.status_code == 400 and "UnicodeDecodeError" in response.text
        assert env.count(ProcessedMessage) == 0
    env.store.dispose()


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_reply_is_sealed_for_each_mode_and_opens_with_wechatpy(tmp_path, clock, mode):
    """The reply is rendered from a template and encrypted with the channel's one cipher:
    wechatpy reads it as it reads its own, message after message."""
    env = build_env(
        tmp_path, clock, bank=None, BRANCHBOT__WECHAT__MODE=mode, BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key()
    )
    with env.client:
        user = env.wechat("o-seal")
        for text in ("帮助", "帮助]]>", "积分"):
            response = user.post(user.text_request(text))
            assert response.status_code == 200
            assert ("<Encrypt>" in response.text) == (mode != "plain")
            assert user.reply_text(response.text)
            if mode != "plain":
                outer = xmltodict.parse(response.text)["xml"]
                plain = WeChatCrypto(TOKEN, env.aes_key, APP_ID).decrypt_message(
                    response.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
                )
                inner = xmltodict.parse(plain)["xml"]
                assert inner["ToUserName"] == "o-seal" and inner["FromUserName"] == "gh_test"
    env.store.dispose()
