"""Every well-formed, correctly signed message gets an answer (issue 11, item 12).

The fixtures under tests/data/inbound/ are one file per kind and event the platforms
document, nested elements included. Each goes through /wechat in plain and safe mode
and through /wecom: HTTP 200 always, the expected reply where the bot has something to
say, `success` (or WeCom's empty body) where it has not. One app per channel and mode.
"""

from __future__ import annotations

import itertools
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import xmltodict
from sqlmodel import select
from wechatpy.enterprise.crypto import WeChatCrypto as WecomCrypto

from bot.store import ProcessedMessage
from bot.store.models import Meeting, MeetingReply, Member
from tests.conftest import CORP_ID, SHANGHAI, WECOM_TOKEN, FakeClock, build_env, random_aes_key, scan_xml, sha1_sorted

INBOUND = Path(__file__).parent / "data" / "inbound"
GUEST = "o-fixture-guest"  # an Official Account follower not on the roster
WECOM_MEMBER = "liming"  # 李明's 企业微信账号 in tests/data/roster.csv

HELP_GUEST = "绑定 姓名 手机号后四位"
MEDIA = "暂时只能识别文字消息"
PHOTO = "暂时无法处理图片"
PLACE = "暂时无法处理位置"
NOT_A_CODE = "不是会议签到码"

# What each fixture is answered with ("" = `success` / empty body).
WECHAT_EXPECTED = {
    "text": HELP_GUEST,
    "image": MEDIA,
    "voice": MEDIA,
    "video": MEDIA,
    "shortvideo": MEDIA,
    "location": MEDIA,
    "link": MEDIA,
    "event_subscribe": "欢迎关注",
    "event_subscribe_qrscene": "欢迎关注",
    "event_unsubscribe": "",
    "event_scan": "",
    "event_location": "",
    "event_click": HELP_GUEST,
    "event_view": "",
    "scancode_push": NOT_A_CODE,
    "scancode_waitmsg": "请先绑定",  # a guest's scanned check-in: bind first
    "pic_sysphoto": PHOTO,
    "pic_photo_or_album": PHOTO,
    "pic_weixin": PHOTO,
    "location_select": PLACE,
    "masssendjobfinish": "",
    "templatesendjobfinish": "",
    "subscribe_msg_popup_event": "",
    "subscribe_msg_change_event": "",
    "subscribe_msg_sent_event": "",
    "shakearound_user_shake": "",
    "view_miniprogram": "",
}
WECOM_EXPECTED = {
    "text": "党支部学习助手可以",
    "image": MEDIA,
    "voice": MEDIA,
    "video": MEDIA,
    "location": MEDIA,
    "link": MEDIA,
    "event_subscribe": "欢迎回来",
    "event_unsubscribe": "",
    "event_location": "",
    "event_click": "党支部学习助手可以",
    "event_view": "",
    "scancode_push": NOT_A_CODE,
    "scancode_waitmsg": "签到码不正确",
    "pic_sysphoto": PHOTO,
    "pic_photo_or_album": PHOTO,
    "pic_weixin": PHOTO,
    "location_select": PLACE,
    "event_enter_agent": "",
    "event_batch_job_result": "",
    "event_change_contact_update_user": "",
    "event_change_contact_create_party": "",
    "event_open_approval_change": "",
}


def test_every_fixture_has_an_expectation():
    assert {p.stem for p in (INBOUND / "wechat").glob("*.xml")} == set(WECHAT_EXPECTED)
    assert {p.stem for p in (INBOUND / "wecom").glob("*.xml")} == set(WECOM_EXPECTED)


def fill(name: str, channel: str, sender: str, now: int, msg_id: int) -> str:
    text = (INBOUND / channel / f"{name}.xml").read_text(encoding="utf-8")
    to = CORP_ID if channel == "wecom" else "gh_test"
    return text.replace("{FROM}", sender).replace("{TO}", to).replace("{NOW}", str(now)).replace("{MSGID}", str(msg_id))


class Apps:
    """One app per (channel, mode), built on first use and shared by the module."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.envs: dict[str, object] = {}
        self.msg_ids = itertools.count(880_000_000_001)

    def get(self, mode: str):  # type: ignore[no-untyped-def]
        if mode not in self.envs:
            clock = FakeClock(datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI).astimezone(UTC))
            extra = {
                "BRANCHBOT__WECHAT__MODE": "plain" if mode == "wecom" else mode,
                "BRANCHBOT__WECHAT__ENCODING_AES_KEY": random_aes_key(),
            }
            if mode == "wecom":
                extra.update(
                    BRANCHBOT__WECOM__CORP_ID=CORP_ID,
                    BRANCHBOT__WECOM__TOKEN=WECOM_TOKEN,
                    BRANCHBOT__WECOM__ENCODING_AES_KEY=random_aes_key(),
                    BRANCHBOT__WECOM__API_BASE="http://127.0.0.1:9",
                )
            folder = self.tmp / mode
            folder.mkdir()
            env = build_env(folder, clock, bank=None, **extra)
            env.client.__enter__()
            self.envs[mode] = env
        return self.envs[mode]

    def close(self) -> None:
        for env in self.envs.values():
            env.client.__exit__(None, None, None)  # type: ignore[attr-defined]
            env.store.dispose()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    built = Apps(tmp_path_factory.mktemp("inbound"))
    yield built
    built.close()


def post_wechat(env, xml: str):  # type: ignore[no-untyped-def]
    user = env.wechat(GUEST)
    return user, user.post(user.sign(xml))


def post_wecom(env, xml: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    crypto = WecomCrypto(WECOM_TOKEN, env.config.wecom.encoding_aes_key, CORP_ID)
    ts, nonce = str(int(env.clock().timestamp())), str(random.randrange(10**9, 10**10))
    envelope = crypto.encrypt_message(xml, nonce, ts)
    encrypted = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]>", envelope).group(1)
    query = urlencode(
        {"msg_signature": sha1_sorted(WECOM_TOKEN, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    )
    response = env.client.post(f"/wecom?{query}", content=envelope.encode())
    if response.status_code != 200 or not response.text:
        return response.status_code, ""
    reply = xmltodict.parse(response.text)["xml"]
    plain = crypto.decrypt_message(response.text, reply["MsgSignature"], reply["TimeStamp"], reply["Nonce"])
    return 200, xmltodict.parse(plain)["xml"]["Content"]


@pytest.mark.parametrize("mode", ["plain", "safe"])
@pytest.mark.parametrize("name", sorted(WECHAT_EXPECTED))
def test_wechat_answers_every_documented_kind(apps, mode, name):
    env = apps.get(mode)
    env.clock.advance(seconds=1)  # events without MsgId are keyed by sender and time
    user, response = post_wechat(env, fill(name, "wechat", GUEST, int(env.clock().timestamp()), next(apps.msg_ids)))
    assert response.status_code == 200, (name, response.text)
    expected = WECHAT_EXPECTED[name]
    if not expected:
        assert response.text == "success"
        return
    if mode == "safe":
        assert "<Encrypt>" in response.text
    assert expected in user.reply_text(response.text), (name, user.reply_text(response.text))


@pytest.mark.parametrize("name", sorted(WECOM_EXPECTED))
def test_wecom_answers_every_documented_kind(apps, name):
    env = apps.get("wecom")
    env.clock.advance(seconds=1)
    status, reply = post_wecom(env, fill(name, "wecom", WECOM_MEMBER, int(env.clock().timestamp()), next(apps.msg_ids)))
    assert status == 200, name
    expected = WECOM_EXPECTED[name]
    assert (expected in reply) if expected else reply == "", (name, reply)


# ---------------------------------------------------------------- scan to check in


def open_meeting(env, code: str) -> int:  # type: ignore[no-untyped-def]
    """A 主题党日 of 第一党支部 starting now, its check-in code valid for 30 minutes."""
    with env.store.session() as db:
        secretary = db.exec(select(Member).where(Member.name == "王书记")).one()
        now = env.clock()
        meeting = Meeting(
            branch_id=secretary.branch_id,
            type="主题党日",
            starts_at=now,
            place="党员活动室",
            topic="",
            created_by=secretary.id,
            created_at=now,
            checkin_code=code,
            checkin_until=now + timedelta(minutes=30),
        )
        db.add(meeting)
        db.flush()
        return meeting.id  # type: ignore[return-value]


def checked_in(env, meeting_id: int) -> list[int]:  # type: ignore[no-untyped-def]
    with env.store.session() as db:
        return [
            r.member_id
            for r in db.exec(select(MeetingReply).where(MeetingReply.meeting_id == meeting_id)).all()
            if r.checked_in_at is not None
        ]


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_scanning_the_meeting_qr_code_checks_the_member_in(tmp_path, clock, mode):
    env = build_env(
        tmp_path, clock, bank=None, BRANCHBOT__WECHAT__MODE=mode, BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key()
    )
    with env.client:
        li = env.wechat("o-li")
        assert "绑定成功" in li.say("绑定 李明 0002")
        meeting = open_meeting(env, "4821")

        def scan(result: str) -> str:
            env.clock.advance(seconds=1)
            response = li.post(li.sign(scan_xml("o-li", int(env.clock().timestamp()), result)))
            assert response.status_code == 200, response.text
            return li.reply_text(response.text)

        assert NOT_A_CODE in scan("https://www.12371.cn/")  # some other QR code: a hint, nothing recorded
        assert "签到码不正确" in scan("签到 1111")  # the 签到 path: a wrong code is refused as if typed
        assert checked_in(env, meeting) == []
        assert scan("签到 4821").startswith("签到成功")
        assert "您已签到过了" in scan("4821")  # bare four digits are a check-in code too
        assert len(checked_in(env, meeting)) == 1


def test_pressing_a_photo_button_gets_a_hint_then_the_photo_too(env):
    user = env.wechat(GUEST)
    now = int(env.clock().timestamp())
    response = user.post(user.sign(fill("pic_photo_or_album", "wechat", GUEST, now, 0)))
    assert PHOTO in user.reply_text(response.text)
    response = user.post(user.sign(fill("image", "wechat", GUEST, now, 990_000_001)))
    assert MEDIA in user.reply_text(response.text)
    assert env.count(ProcessedMessage) == 2


def test_an_unknown_message_kind_is_answered_success(env):
    """A kind the platform adds later: 200 `success`, counted as `other` in /metrics."""
    user = env.wechat(GUEST)
    now = int(env.clock().timestamp())
    xml = (
        f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{GUEST}]]></FromUserName>"
        f"<CreateTime>{now}</CreateTime><MsgType><![CDATA[miniprogrampage]]></MsgType>"
        f"<Title><![CDATA[t]]></Title><Nested><A>1</A><A>2</A></Nested><MsgId>990000002</MsgId></xml>"
    )
    response = user.post(user.sign(xml))
    assert response.status_code == 200 and response.text == "success"
    assert 'kind="other"' in env.client.get("/metrics").text
