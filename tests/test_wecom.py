"""/wecom: encrypted echostr verification and members matched by WeCom user id."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
import xmltodict
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from bot.store import ProcessedMessage
from tests.conftest import CORP_ID, WECOM_TOKEN, build_env, random_aes_key, sha1_sorted


@pytest.fixture
def wecom_env(tmp_path, clock, database_url):
    key = random_aes_key()
    env = build_env(
        tmp_path,
        clock,
        database_url=database_url,
        BRANCHBOT__WECOM__CORP_ID=CORP_ID,
        BRANCHBOT__WECOM__TOKEN=WECOM_TOKEN,
        BRANCHBOT__WECOM__ENCODING_AES_KEY=key,
        BRANCHBOT__WECOM__API_BASE="http://127.0.0.1:9/gov",
    )
    env.aes_key = key
    with env.client:
        yield env


def wecom_say(env, userid: str, content: str, msg_id: int) -> str:
    crypto = WeChatCrypto(WECOM_TOKEN, env.aes_key, CORP_ID)
    ts, nonce = str(int(env.clock().timestamp())), "1372623149"
    xml = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{userid}]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
    )
    envelope = crypto.encrypt_message(xml, nonce, ts)
    encrypted = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", envelope).group(1)
    query = urlencode(
        {"msg_signature": sha1_sorted(WECOM_TOKEN, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    )
    response = env.client.post(f"/wecom?{query}", content=envelope.encode())
    assert response.status_code == 200, response.text
    reply = xmltodict.parse(response.text)["xml"]
    plain = crypto.decrypt_message(response.text, reply["MsgSignature"], reply["TimeStamp"], reply["Nonce"])
    return xmltodict.parse(plain)["xml"]["Content"]


def test_url_verification_decrypts_echostr(wecom_env):
    prp = PrpCrypto(WeChatCrypto(WECOM_TOKEN, wecom_env.aes_key, CORP_ID).key)
    echo = prp.encrypt("1616140317555161061", CORP_ID).decode()
    ts = str(int(wecom_env.clock().timestamp()))
    query = urlencode(
        {"msg_signature": sha1_sorted(WECOM_TOKEN, ts, "5", echo), "timestamp": ts, "nonce": "5", "echostr": echo}
    )
    response = wecom_env.client.get(f"/wecom?{query}")
    assert response.status_code == 200 and response.text == "1616140317555161061"
    bad = urlencode({"msg_signature": "0" * 40, "timestamp": ts, "nonce": "5", "echostr": echo})
    assert wecom_env.client.get(f"/wecom?{bad}").status_code == 403


def test_member_matched_by_wecom_userid_without_binding(wecom_env):
    assert "本月积分：0 分" in wecom_say(wecom_env, "liming", "积分", 1)
    reply = wecom_say(wecom_env, "liming", "答题", 2)
    assert "第 1/10 题" in reply
    assert "无需绑定" in wecom_say(wecom_env, "liming", "绑定 李明 0002", 3)


def test_unknown_wecom_user_is_told_to_ask_the_secretary(wecom_env):
    """WeCom users are matched by 企业微信账号 and cannot bind: never tell them to 绑定."""
    for n, text in enumerate(["积分", "帮助", "随便说说"], start=4):
        reply = wecom_say(wecom_env, "stranger", text, n)
        assert "名册中没有您的企业微信账号" in reply and "支部书记" in reply, reply
        assert "绑定" not in reply, reply
    assert "名册中没有您的企业微信账号" in wecom_say(wecom_env, "stranger", "绑定 李明 0002", 9)


def test_bound_members_are_never_offered_binding(wecom_env):
    """Suggestions for unrecognised text: a matched member (WeCom) or a bound member
    (Official Account) is never offered 绑定; a guest on the Official Account is."""
    assert "绑定" not in wecom_say(wecom_env, "liming", "绑", 20)
    user = wecom_env.wechat("o-li")
    assert "绑定成功" in user.say("绑定 李明 0002")
    for text in ("绑", "帮", "xyz"):
        reply = user.say(text)
        assert "没有找到" in reply and "「绑定」" not in reply, reply
    assert "「绑定」" in wecom_env.wechat("o-guest").say("绑")


def test_wecom_retry_processed_once(wecom_env):
    first = wecom_say(wecom_env, "wangshuji", "答题", 6)
    again = wecom_say(wecom_env, "wangshuji", "答题", 6)
    assert first == again
    assert wecom_env.count(ProcessedMessage) == 1


def test_wecom_bad_signature_and_stale_timestamp(wecom_env):
    crypto = WeChatCrypto(WECOM_TOKEN, wecom_env.aes_key, CORP_ID)
    ts = str(int(wecom_env.clock().timestamp()) - 1000)
    envelope = crypto.encrypt_message("<xml><FromUserName>liming</FromUserName></xml>", "1", ts)
    encrypted = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", envelope).group(1)
    stale = urlencode({"msg_signature": sha1_sorted(WECOM_TOKEN, ts, "1", encrypted), "timestamp": ts, "nonce": "1"})
    assert wecom_env.client.post(f"/wecom?{stale}", content=envelope.encode()).status_code == 403
    now = str(int(wecom_env.clock().timestamp()))
    forged = urlencode({"msg_signature": "a" * 40, "timestamp": now, "nonce": "1"})
    assert wecom_env.client.post(f"/wecom?{forged}", content=envelope.encode()).status_code == 403
    assert wecom_env.count(ProcessedMessage) == 0


def test_wecom_not_configured_is_404(env):
    assert env.client.post("/wecom?timestamp=1", content=b"<xml/>").status_code == 404
