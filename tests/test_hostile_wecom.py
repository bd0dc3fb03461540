"""Hostile input to /wecom and to the roster importer, completing test_hostile_input.py.

/wecom: random and mutated envelopes, bad ciphertext, hostile XML *inside* a correctly
encrypted and signed payload (so it reaches the parser), wrong ReceiveId, hostile query
strings. Always 200/400/403, a refusal stores nothing, and a 200 carries a reply that
decrypts, verifies and parses, addressed to the sender.

Roster: random CSV (and some XLSX) with hostile cells. Only FileProblem escapes, every
error names file, row, column letter and header on one line, every non-blank row is
either accepted or named in an error, accepted values are valid, and an import through
the CLI with any error changes nothing.
"""

from __future__ import annotations

import base64
import csv
import itertools
import re
import socket
import struct
import unicodedata
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import pytest
import xmltodict
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter
from sqlalchemy import func
from sqlmodel import select
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from bot.app import APOLOGY
from bot.roster import check_file as check_roster
from bot.store import Branch, Member, Role
from bot.store.models import (
    Answer,
    Attempt,
    AuditEntry,
    BindAttempt,
    Campaign,
    Delivery,
    Dialog,
    MeetingReply,
    PointsEntry,
    ProcessedMessage,
    QuestionReport,
)
from bot.tabular import FileProblem
from tests.conftest import CORP_ID, DATA, FakeClock, build_env, random_aes_key, sha1_sorted
from tests.test_hostile_wechat import xml_bodies
from tests.test_wecom import WECOM_TOKEN

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FEW = settings(FUZZ, max_examples=40)

NONCE = "1372623149"
NO_SURROGATES = st.characters(blacklist_categories=("Cs",))
nonces = st.one_of(st.just(NONCE), st.text(alphabet=NO_SURROGATES, max_size=20))  # signed, so any text reaches us


# ------------------------------------------------------------------ /wecom helpers


@pytest.fixture(scope="module")
def wecom(tmp_path_factory):
    """One app with WeCom enabled on SQLite, shared by the examples (refusals must not
    change it, accepted messages may)."""
    clock = FakeClock(datetime(2026, 11, 10, 1, 0, tzinfo=UTC))
    key = random_aes_key()
    env = build_env(
        tmp_path_factory.mktemp("wecom-fuzz"),
        clock,
        BRANCHBOT__WECOM__CORP_ID=CORP_ID,
        BRANCHBOT__WECOM__TOKEN=WECOM_TOKEN,
        BRANCHBOT__WECOM__ENCODING_AES_KEY=key,
        BRANCHBOT__WECOM__API_BASE="http://127.0.0.1:9/gov",
    )
    env.aes_key = key
    env.crypto = WeChatCrypto(WECOM_TOKEN, key, CORP_ID)
    with env.client:
        yield env
    env.store.dispose()


msg_ids = itertools.count(7_000_000_001)
WATCHED = [
    ProcessedMessage,
    Attempt,
    Answer,
    PointsEntry,
    Dialog,
    BindAttempt,
    Campaign,
    Delivery,
    MeetingReply,
    AuditEntry,
    QuestionReport,
]


def snapshot(env) -> tuple:
    """Row counts of everything a message can write, and every member's binding state."""
    with env.store.session() as db:
        counts = tuple(db.exec(select(func.count()).select_from(model)).one() for model in WATCHED)
        members = tuple(
            sorted(
                (m.id, m.openid, m.wecom_userid, m.subscribed, m.status, m.role, str(m.bound_at))
                for m in db.exec(select(Member)).all()
            )
        )
    return counts, members


def encrypt(env, plaintext: bytes | str, receive_id: bytes | str = CORP_ID) -> str:
    """Encrypt exactly these bytes with the app's real key, as WeCom does."""
    if isinstance(plaintext, str):
        plaintext = plaintext.encode("utf-8", "surrogatepass")
    if isinstance(receive_id, str):
        receive_id = receive_id.encode("utf-8", "surrogatepass")
    return PrpCrypto(env.crypto.key).encrypt(plaintext, receive_id).decode()


def envelope(encrypted: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        f"<AgentID><![CDATA[1000002]]></AgentID></xml>"
    ).encode("utf-8", "surrogatepass")


def signed(env, encrypted: str, nonce: str = NONCE) -> str:
    ts = str(int(env.clock().timestamp()))
    return urlencode({"msg_signature": sha1_sorted(WECOM_TOKEN, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce})


def post(env, query: str, body: bytes):
    return env.client.post(f"/wecom?{query}", content=body, headers={"Content-Type": "text/xml"})


def assert_sane_reply(env, response, payload: bytes) -> None:
    """A 200: empty (nothing to say, or answered late through the outbox), or an envelope
    whose signature verifies and which decrypts to a text reply to the sender."""
    assert response.status_code == 200, response.text
    if response.text == "":
        return
    outer = xmltodict.parse(response.text)["xml"]
    plain = env.crypto.decrypt_message(response.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
    reply = xmltodict.parse(plain)["xml"]
    sender = xmltodict.parse(payload)["xml"]["FromUserName"]
    assert reply["ToUserName"] == sender
    assert reply["FromUserName"] == CORP_ID and reply["MsgType"] == "text"
    assert reply["Content"] and reply["Content"] != APOLOGY  # APOLOGY means a handler raised


def refused_cleanly(env, before, response, statuses=(400, 403)) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert snapshot(env) == before, "a refused request changed the store"


# ------------------------------------------------------------------ /wecom strategies

UNICODE_EDGES = [
    "\u202e",
    "\u200f",
    "\u200b",
    "\u2028",
    "\ufeff",
    "a\u0301",
    "🎉" * 30,
    "👨\u200d👩\u200d👧",
    "𝔘𝔫𝔦",
    "１３９",
    "٣",
    "\U0010fffd",
    "\x00",
    "\x0b",
    "\x1b[31m",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udfff",
    "]]>",
    "&lol;",
    "&#0;",
    "&#x1F;",
    "&#xD800;",
    "<a>",
    "%s%n",
    "\r\n",
    " ",
]
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=NO_SURROGATES, max_size=200),
    st.sampled_from(UNICODE_EDGES),
    st.lists(st.sampled_from(UNICODE_EDGES), max_size=5).map("".join),
)
SENDERS = ["liming", "wangshuji", "wuguanli", "stranger", "LiMing", "liming ", ""]
COMMANDS = ["答题", "积分", "排行榜", "帮助", "绑定 李明 0002", "A", "对", "学习", "错题", "取消", "确认", "通知 测试"]


def field_xml(draw, name: str, value: str) -> str:
    """One element, as CDATA (split around ']]>'), escaped text, or with a wrong shape."""
    shape = draw(st.sampled_from(["cdata"] * 6 + ["text"] * 3 + ["nested", "attribute", "twice", "empty"]))
    if shape == "cdata":
        return f"<{name}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{name}>"
    if shape == "text":
        return f"<{name}>{escape(value)}</{name}>"
    if shape == "nested":
        return f"<{name}><a>{escape(value)}</a></{name}>"
    if shape == "attribute":
        return f'<{name} x="1">{escape(value)}</{name}>'
    if shape == "twice":
        return f"<{name}>{escape(value)}</{name}><{name}>{escape(value)}</{name}>"
    return f"<{name}/>"


def usually(draw, normal, odd):
    """The normal strategy three times in four, so that many messages get through."""
    return draw(odd if draw(st.integers(0, 3)) == 0 else normal)


@st.composite
def messages(draw, odd_shapes: bool = True) -> bytes:
    """A decrypted WeCom message, each field usually plausible and otherwise odd (hostile
    text, out-of-range numbers, wrong case, empty); with ``odd_shapes`` some elements
    also get the wrong structure."""
    now = 1_793_000_000  # the caller puts its clock's time in place of this
    fields = {
        "ToUserName": usually(draw, st.just(CORP_ID), hostile_text),
        "FromUserName": usually(draw, st.sampled_from(SENDERS[:4]), st.one_of(st.sampled_from(SENDERS), hostile_text)),
        "CreateTime": usually(
            draw,
            st.just(str(now)),
            st.one_of(
                st.integers(-10, 10**13).map(str),
                st.sampled_from(
                    ["999999999999", "253402300800", "253402300799", "0", "", "1.7e9", "０１２", "٣٣٣", "+17", " 17"]
                ),
            ),
        ),
        "MsgType": usually(
            draw,
            st.sampled_from(["text", "text", "event"]),
            st.one_of(st.sampled_from(["image", "voice", "location", "link", "TEXT", "Event", ""]), hostile_text),
        ),
        "Content": usually(draw, st.sampled_from(COMMANDS), hostile_text),
        "MsgId": usually(
            draw,
            st.builds(lambda: str(next(msg_ids))),
            st.one_of(st.sampled_from(["", "0", "-1", "1" * 20, "1" * 21, "１２"]), hostile_text),
        ),
        "Event": draw(st.sampled_from(["subscribe", "unsubscribe", "click", "view", "enter_agent", "LOCATION", ""])),
        "EventKey": draw(hostile_text),
        "AgentID": draw(st.sampled_from(["1000002", "", "x"])),
    }
    chosen = draw(st.lists(st.sampled_from(list(fields)), unique=True, min_size=0, max_size=len(fields)))
    if draw(st.integers(0, 3)):  # usually the three fields the router needs are there
        chosen = list(dict.fromkeys(["FromUserName", "CreateTime", "MsgType", *chosen]))
    parts = []
    for name in chosen:
        if odd_shapes:
            parts.append(field_xml(draw, name, fields[name]))
        else:
            value = fields[name].replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return ("<xml>" + "".join(parts) + "</xml>").encode("utf-8", "surrogatepass")


def good_message(content: str = "积分") -> str:
    """A message the app answers, so that a refusal of a variant is down to the variant."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[liming]]></FromUserName>"
        f"<CreateTime>1793000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{content}</Content><MsgId>{next(msg_ids)}</MsgId></xml>"
    )


BILLION_LAUGHS = (
    '<!DOCTYPE xml [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
)
DECLARATIONS = [
    BILLION_LAUGHS,
    '<!DOCTYPE xml [<!ENTITY d SYSTEM "file:///etc/passwd">]>',
    '<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>',
    '<!doctype xml [<!entity d "x">]>',
    '<!  DOCTYPE xml [<!ENTITY d "x">]>',
    '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd">',
    '<?xml version="1.0"?>\n<!DOCTYPE xml [\n<!ENTITY d "x">\n]>',
]


@st.composite
def hostile_payloads(draw) -> tuple[bytes, bool]:
    """(plaintext to encrypt, must it be refused?)."""
    message = draw(messages())
    kind = draw(
        st.sampled_from(
            [
                "plain",
                "plain",
                "declaration",
                "utf16",
                "bom",
                "xmldecl",
                "truncate",
                "junk",
                "huge",
                "surrogate",
                "random",
            ]
        )
    )
    if kind == "declaration":  # an otherwise good message: only the declaration can get it refused
        return (draw(st.sampled_from(DECLARATIONS)) + good_message("&d;")).encode(), True
    if kind == "utf16":  # the declaration check must not be dodged by another encoding
        text = '<?xml version="1.0" encoding="UTF-16"?>' + BILLION_LAUGHS + good_message("&d;")
        return text.encode(draw(st.sampled_from(["utf-16-le", "utf-16-be"]))), True
    if kind == "bom":
        return b"\xef\xbb\xbf" + message, False
    if kind == "xmldecl":
        encoding = draw(st.sampled_from(["UTF-8", "utf-16", "ISO-8859-1", "GB18030", "UTF-7", "bogus", "EBCDIC"]))
        return f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + message, False
    if kind == "truncate":
        return message[: draw(st.integers(0, len(message)))], False
    if kind == "junk":
        return draw(st.binary(max_size=300)), False
    if kind == "huge":  # near and over the 64 KiB body limit once encrypted and base64-encoded
        size = draw(st.sampled_from([20_000, 40_000, 47_000, 60_000]))
        char = draw(st.sampled_from(["a", "党", "🎉", "&amp;"]))
        name = draw(st.sampled_from(["Content", "FromUserName", "EventKey", "MsgType"]))
        filler = char * (size // len(char.encode()))
        return message.replace(b"</xml>", f"<{name}><![CDATA[{filler}]]></{name}></xml>".encode()), False
    if kind == "surrogate":  # not UTF-8 at all
        return message.replace(b"</xml>", "<Content>\ud800</Content></xml>".encode("utf-8", "surrogatepass")), True
    if kind == "random":
        return draw(xml_bodies()), False
    return message, False


# ------------------------------------------------------------------ /wecom properties


@FUZZ
@given(body=xml_bodies(), sign=st.booleans())
def test_random_and_mutated_envelopes_are_refused(wecom, body, sign):
    """Whatever the outer XML, without a real ciphertext nothing is processed."""
    before = snapshot(wecom)
    found = re.search(rb"<Encrypt>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</Encrypt>", body, re.S)
    encrypted = found.group(1).decode("utf-8", "replace") if found and sign else "x"
    refused_cleanly(wecom, before, post(wecom, signed(wecom, encrypted), body))


@FUZZ
@given(payload=hostile_payloads(), nonce=nonces)
def test_hostile_xml_inside_a_valid_encryption(wecom, payload, nonce):
    """Encrypted with the real key and signed: it reaches the parser. A refusal stores
    nothing; anything accepted gets a sane reply; a DOCTYPE/ENTITY is always refused."""
    plaintext, must_refuse = payload
    plaintext = plaintext.replace(b"1793000000", str(int(wecom.clock().timestamp())).encode())
    before = snapshot(wecom)
    encrypted = encrypt(wecom, plaintext)
    response = post(wecom, signed(wecom, encrypted, nonce), envelope(encrypted))
    event(f"status {response.status_code}")
    if must_refuse or len(envelope(encrypted)) > 64 * 1024:
        refused_cleanly(wecom, before, response, (400,))
    elif response.status_code == 200:
        assert_sane_reply(wecom, response, plaintext)
    else:
        refused_cleanly(wecom, before, response, (400,))


@FUZZ
@given(message=messages(odd_shapes=False), nonce=nonces)
def test_valid_xml_with_odd_values_gets_a_sane_reply_or_a_refusal(wecom, message, nonce):
    """Every field CDATA: a 200 with a reply to the sender, or a 400 exactly when the XML
    is ill-formed or a field the router needs is missing or malformed (an empty <Event/>
    may go either way)."""
    message = message.replace(b"1793000000", str(int(wecom.clock().timestamp())).encode())
    try:
        fields = xmltodict.parse(message)["xml"] or {}
    except Exception:  # hostile text made it ill-formed (NUL, U+FFFE, a surrogate)
        fields = None
    before = snapshot(wecom)
    encrypted = encrypt(wecom, message)
    response = post(wecom, signed(wecom, encrypted, nonce), envelope(encrypted))
    event(f"status {response.status_code}")
    needed = (
        fields is not None
        and fields.get("FromUserName")
        and fields.get("MsgType")
        and re.fullmatch(r"[0-9]{1,12}", fields.get("CreateTime") or "")
        and re.fullmatch(r"[0-9]{0,20}", fields.get("MsgId") or "")
    )
    if not needed or int(fields["CreateTime"]) > 253402300799:  # after 9999-12-31T23:59:59Z
        refused_cleanly(wecom, before, response, (400,))
    elif fields["MsgType"].lower() == "event" and "Event" in fields and not fields["Event"]:
        # <Event/> present but empty: a malformed event, which may be refused.
        if response.status_code == 200:
            assert_sane_reply(wecom, response, message)
        else:
            refused_cleanly(wecom, before, response, (400,))
    else:
        assert_sane_reply(wecom, response, message)


@FEW
@given(
    receive_id=st.one_of(
        st.text(max_size=30),
        st.sampled_from(
            [
                "",
                CORP_ID.upper(),
                CORP_ID + " ",
                " " + CORP_ID,
                CORP_ID[:-1],
                CORP_ID + "\x00",
                "ｗｗ0123456789abcdef",
                CORP_ID * 2,
                "wx1234567890abcdef",
                CORP_ID + "\ud800",
            ]
        ),
    ).filter(lambda r: r != CORP_ID),
    content=st.sampled_from(COMMANDS),
)
def test_wrong_receive_id_inside_a_valid_encryption_is_refused(wecom, receive_id, content):
    ts = int(wecom.clock().timestamp())
    message = good_message(f"<![CDATA[{content}]]>").replace("1793000000", str(ts)).encode()
    before = snapshot(wecom)
    encrypted = encrypt(wecom, message, receive_id)
    refused_cleanly(wecom, before, post(wecom, signed(wecom, encrypted), envelope(encrypted)), (400,))
    encrypted = encrypt(wecom, message, CORP_ID)  # the same message for the right corp goes through
    assert_sane_reply(wecom, post(wecom, signed(wecom, encrypted), envelope(encrypted)), message)


@st.composite
def bad_ciphertexts(draw, key: bytes, good: str) -> str:
    """Signed but bad; ``good`` decrypts for our corp but lacks MsgType and CreateTime, so
    it is refused even where a mutation leaves it readable."""
    kind = draw(st.sampled_from(["text", "base64", "mutated", "truncated", "noncanonical", "raw"]))
    if kind == "text":
        return draw(st.text(alphabet=NO_SURROGATES, max_size=200))
    if kind == "base64":
        return base64.b64encode(draw(st.binary(max_size=300))).decode()
    if kind == "mutated":
        i = draw(st.integers(0, len(good.rstrip("=")) - 1))
        new = draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"))
        mutated = good[:i] + new + good[i + 1 :]
        assume(base64.b64decode(mutated) != base64.b64decode(good))  # not just the unused low bits of the last char
        return mutated
    if kind == "truncated":
        return good[: draw(st.integers(0, len(good) - 1))]
    if kind == "noncanonical":  # lenient decoders skip these characters; we must not
        i = draw(st.integers(0, len(good)))
        return good[:i] + draw(st.sampled_from(["!", " ", "\t", "-", "_", "é", "*", "=", "==", "."])) + good[i:]
    # Hand-made plaintext block: arbitrary length field and padding byte.
    length = draw(st.integers(0, 2**32 - 1))
    body = draw(st.binary(max_size=64))
    block = (
        b"0123456789abcdef"
        + struct.pack(b"I", socket.htonl(length))
        + body
        + draw(st.sampled_from([b"", CORP_ID.encode()]))
    )
    block += bytes([draw(st.integers(0, 255))]) * (16 - len(block) % 16)
    return base64.b64encode(PrpCrypto(key).cipher.encrypt(block)).decode()


@FUZZ
@given(data=st.data())
def test_bad_ciphertext_is_a_clean_refusal(wecom, data):
    good = encrypt(wecom, b"<xml><FromUserName>liming</FromUserName></xml>")
    encrypted = data.draw(bad_ciphertexts(wecom.crypto.key, good))
    before = snapshot(wecom)
    safe = encrypted.replace("]]>", "")
    # 400 for bad ciphertext; 403 where XML's newline normalisation changed the signed text.
    refused_cleanly(wecom, before, post(wecom, signed(wecom, safe), envelope(safe)))


QUERY_KEYS = ["msg_signature", "timestamp", "nonce", "echostr", "signature", "encrypt_type"]
query_values = st.one_of(
    st.text(alphabet=NO_SURROGATES, max_size=40),
    st.sampled_from(
        ["", "0", "1793000000", "９９", "-1", "1e9", "0" * 40, "a" * 41, "\x00", "%00", "%%", "&", "=", "+"]
    ),
)


@FUZZ
@given(
    query=st.dictionaries(st.sampled_from(QUERY_KEYS), query_values, max_size=6),
    duplicate=st.booleans(),
    message=messages(odd_shapes=False),
)
def test_hostile_query_strings_are_refused(wecom, query, duplicate, message):
    """GET (echostr verification) and POST with a real envelope but an unsigned query."""
    text = urlencode(query) + ("&timestamp=1&timestamp=2" if duplicate else "")
    assert wecom.client.get(f"/wecom?{text}").status_code in (400, 403)
    before = snapshot(wecom)
    encrypted = encrypt(wecom, message)
    refused_cleanly(wecom, before, post(wecom, text, envelope(encrypted)), (403,))


@FUZZ
@given(
    echo=st.one_of(
        st.binary(max_size=80),
        st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from([b"1616140317555161061", b"", b"\x00", "\u202e🎉".encode(), b"\xff\xfe"]),
    ),
    receive_id=st.sampled_from([CORP_ID, CORP_ID, "", CORP_ID.upper(), CORP_ID + "x"]),
    mangle=st.sampled_from(["none", "none", "text", "truncate", "noncanonical"]),
    nonce=st.text(alphabet=NO_SURROGATES, max_size=20),
)
def test_echostr_verification_is_exact(wecom, echo, receive_id, mangle, nonce):
    """Signed GET: echo the plaintext exactly when it decrypts for our corp, else 400."""
    encrypted = encrypt(wecom, echo, receive_id)
    if mangle == "text":
        encrypted = echo.decode("latin-1")
    elif mangle == "truncate":
        encrypted = encrypted[:-5]
    elif mangle == "noncanonical":
        encrypted = encrypted[:8] + "!" + encrypted[8:]
    ts = str(int(wecom.clock().timestamp()))
    query = urlencode(
        {
            "msg_signature": sha1_sorted(WECOM_TOKEN, ts, nonce, encrypted),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": encrypted,
        }
    )
    response = wecom.client.get(f"/wecom?{query}")
    try:
        text = echo.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if mangle == "none" and receive_id == CORP_ID and text is not None:
        assert response.status_code == 200 and response.text == text
    else:
        assert response.status_code == 400, response.text
    stale = urlencode(
        {
            "msg_signature": sha1_sorted(WECOM_TOKEN, "1", nonce, encrypted),
            "timestamp": "1",
            "nonce": nonce,
            "echostr": encrypted,
        }
    )
    assert wecom.client.get(f"/wecom?{stale}").status_code == 403


# ------------------------------------------------------------------ roster strategies

HEADERS = ["姓名", "手机号", "支部", "入党日期", "角色", "微信OpenID", "企业微信账号"]
TODAY = date(2026, 11, 10)
FOUNDED = date(1921, 7, 1)
HOSTILE_CELLS = [
    "",
    " ",
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "=HYPERLINK(\"http://x\")",
    "2026-02-30",
    "1900-01-00",
    "9999-99-99",
    "2099-01-01",
    "0000-00-00",
    "1899-12-30",
    "1900-01-01",
    "2001/7/1",
    "2001年7月1日",
    "2001-07-01 00:00:00",
    "２００１-０７-０１",
    "٢٠٠١-٠٧-٠١",
    "１３９００００００９９",
    "١٣٩٠٠٠٠٠٠٩٩",
    "۱۳۹۰۰۰۰۰۰۹۹",
    "①③⑨⓪⓪⓪⓪⓪⓪⑨⑨",
    "13900000001",
    "139-0000-0099",
    "139 0000 0098",
    "+8613900000097",
    "1.39E+10",
    "139000000991",
    "党员",
    "书记",
    "管理员",
    "支部书记",
    "预备党员",
    "队长",
    "Admin",
    "\ufeff姓名",
    "\ufeff",
    "\u202e",
    "\u200b",
    "张\u200b三",
    "\x1b[31m",
    "🎉",
    "x" * 200,
    "张" * 51,
    "支" * 101,
    "liming",
    "wangshuji",
    "o-liming",
    "a b",
    "中文账号",
    "_x",
    "a" * 65,
    "\r\n",
    "\"",
    "'",
    ",",
    "\u2028",
    "\x7f",
    "NULL",
    "None",
    "nan",
]
cells = st.one_of(
    st.sampled_from(HOSTILE_CELLS),
    st.text(alphabet=NO_SURROGATES, max_size=20),
    st.text(alphabet=NO_SURROGATES, min_size=1000, max_size=3000),
)
ids = st.integers(0, 10**8 - 1)


@st.composite
def roster_rows(draw, cell=cells) -> list[dict]:
    """Mostly valid rows with a few hostile cells, so imports both succeed and fail."""
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        row = {
            "姓名": draw(st.sampled_from(["张三", "李四", "王五", "买买提·艾力", "欧阳 娜娜"])),
            "手机号": f"136{draw(ids):08d}",
            "支部": draw(st.sampled_from(["第一党支部", "第二党支部", "新支部"])),
            "入党日期": draw(st.dates(FOUNDED, TODAY)).isoformat(),
            "角色": draw(st.sampled_from(["党员", "书记", "管理员", "", "预备党员"])),
            "微信OpenID": draw(st.sampled_from(["", "", f"o-{draw(ids)}"])),
            "企业微信账号": draw(st.sampled_from(["", "", f"u{draw(ids)}"])),
        }
        hostile = draw(st.sampled_from([0, 0, 0, 0, 1, 1, 2, 3]))  # half the rows stay clean
        for header in draw(st.lists(st.sampled_from(HEADERS), max_size=hostile)):
            row[header] = draw(cell)
        rows.append(row)
    return rows


HEADER_VARIANTS = ["plain", "plain", "plain", "shuffled", "extra", "decorated", "missing", "duplicate", "invisible"]


def header_row(draw) -> list[str]:
    variant = draw(st.sampled_from(HEADER_VARIANTS))
    headers = list(HEADERS)
    if variant == "shuffled":
        headers = draw(st.permutations(HEADERS))
    elif variant == "extra":
        headers.insert(draw(st.integers(0, len(headers))), draw(st.sampled_from(["备注", "", "性别", "=1+1"])))
    elif variant == "decorated":
        headers = [f" {h}（必填）" if i % 2 else f"{h}(选填) " for i, h in enumerate(headers)]
    elif variant == "missing":
        headers[draw(st.integers(0, 4))] = draw(st.sampled_from(["", "姓 名", "手機號", "Name", "\u202e姓名"]))
    elif variant == "duplicate":
        headers.append(draw(st.sampled_from(HEADERS)))
    elif variant == "invisible":
        i = draw(st.integers(0, len(headers) - 1))
        headers[i] = draw(st.sampled_from(["\ufeff", "\u200b", "\u200e"])) + headers[i]
    return headers


def canonical(header: str) -> str:
    text = unicodedata.normalize("NFKC", header).strip()
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return re.sub(r"\(.*?\)", "", text).replace(" ", "")


def write_csv(path: Path, headers: list[str], rows: list[dict], encoding: str) -> None:
    keys = [canonical(h) for h in headers]
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([row.get(k, "") if k in HEADERS else "备注" for k in keys])


def is_blank(row: dict, keys: list[str]) -> bool:
    return all(str(row.get(k, "") if k in HEADERS else "备注").strip() == "" for k in keys)


INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def assert_storable(name, phone, branch, joined_on, role, openid, wecom_userid, today=TODAY) -> None:
    """What the importer may store (phone: 11 ASCII digits; no formula or invisible text)."""
    assert phone.isascii() and re.fullmatch(r"1[0-9]{10}", phone), phone
    for text, limit in ((name, 50), (branch, 100)):
        assert 1 <= len(text) <= limit and text == text.strip(), text
        assert text[0] not in "=+-@", text
        assert not any(unicodedata.category(c) in INVISIBLE for c in text), ascii(text)
    assert isinstance(joined_on, date) and FOUNDED <= joined_on <= today, joined_on
    assert role in {r.value for r in Role}, role
    assert not openid or re.fullmatch(r"[A-Za-z0-9_-]{1,64}", openid), openid
    assert not wecom_userid or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", wecom_userid), wecom_userid


ERROR = re.compile(r"(?P<file>[^ ]+) 第 (?P<row>\d+) 行 (?P<letter>[A-Z]+) 列「(?P<header>[^」]+)」：(?P<message>.+)")


def assert_checked(path: Path, headers: list[str], rows: list[dict]) -> None:
    """check_file's contract on one file."""
    try:
        checked = check_roster(path, TODAY)
    except FileProblem as problem:  # the documented whole-file refusal, naming the file
        event("whole file refused")
        assert str(problem).startswith(path.name) or path.name in str(problem), str(problem)
        assert "\n" not in str(problem) and len(str(problem)) < 600, str(problem)
        return
    keys = [canonical(h) for h in headers]
    event("rows refused" if checked.errors else "all rows accepted")
    for error in checked.errors:
        text = str(error)
        match = ERROR.fullmatch(text)
        assert match, f"error not in the 'file 第 N 行 X 列「header」：…' form: {text!r}"
        assert match["file"] == path.name and match["header"] in HEADERS
        assert match["letter"] == get_column_letter(keys.index(match["header"]) + 1), text
        assert 2 <= int(match["row"]) <= len(rows) + 1, text
        assert len(text) < 300, f"unbounded error message ({len(text)} chars)"
        assert not any(unicodedata.category(c) in INVISIBLE for c in text), f"invisible characters in {text!r}"
    accepted = {m.row for m in checked.members}
    failed = {e.row for e in checked.errors}
    assert not accepted & failed, "a row both accepted and refused"
    for number, row in enumerate(rows, start=2):
        if not is_blank(row, keys):
            assert number in accepted | failed, f"row {number} silently dropped"
    for m in checked.members:
        assert_storable(m.name, m.phone, m.branch, m.joined_on, m.role, m.openid, m.wecom_userid)
    for attribute in ("phone", "openid", "wecom_userid"):
        values = [getattr(m, attribute) for m in checked.members if getattr(m, attribute)]
        assert len(values) == len(set(values)), f"duplicate {attribute} accepted"


# ------------------------------------------------------------------ roster properties


@FUZZ
@given(data=st.data(), rows=roster_rows(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-8-sig", "gb18030"]))
def test_roster_csv_checker_contract(tmp_path_factory, data, rows, encoding):
    headers = header_row(data.draw)
    path = tmp_path_factory.mktemp("roster") / "fuzz.csv"
    try:
        write_csv(path, headers, rows, encoding)
    except UnicodeEncodeError:
        assume(False)
    assert_checked(path, headers, rows)


xlsx_cells = st.one_of(
    cells,
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(date(1900, 1, 1), date(9999, 12, 31)),
    st.datetimes(datetime(1900, 1, 1)),
    st.booleans(),
    st.none(),
    st.sampled_from([13900000099, 13900000099.0, 1.39e10, 0, 0.5]),
)


@FEW
@given(data=st.data(), rows=roster_rows(cell=xlsx_cells))
def test_roster_xlsx_checker_contract(tmp_path_factory, data, rows):
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    headers = header_row(data.draw)
    keys = [canonical(h) for h in headers]
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        for key, value in row.items():
            if isinstance(value, str):
                row[key] = ILLEGAL_CHARACTERS_RE.sub("", value)
        sheet.append([row.get(k) if k in HEADERS else "备注" for k in keys])
    path = tmp_path_factory.mktemp("roster") / "fuzz.xlsx"
    book.save(path)
    rows = [{k: ("" if v is None else v) for k, v in row.items()} for row in rows]
    for row in rows:  # a cell starting with '=' is a formula: read back (data_only, no cache) as empty
        for key, value in row.items():
            if isinstance(value, str) and value.startswith("="):
                row[key] = ""
    assert_checked(path, headers, rows)


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory):
    """A CLI config on SQLite with the test roster imported once."""
    from bot.cli import main

    with pytest.MonkeyPatch.context() as patch:
        import os

        for name in list(os.environ):
            if name.startswith("BRANCHBOT__"):
                patch.delenv(name)
        folder = tmp_path_factory.mktemp("cli")
        config = folder / "config.toml"
        config.write_text(f'[database]\nurl = "sqlite:///{folder / "cli.db"}"\n', encoding="utf-8")
        assert main(["init", "--config", str(config)]) == 0
        assert main(["members", "import", str(DATA / "roster.csv"), "--config", str(config)]) == 0
        yield config


def member_table(config: Path) -> tuple:
    from bot.store import create_store

    store = create_store(f"sqlite:///{config.parent / 'cli.db'}")
    try:
        with store.session() as db:
            members = tuple(sorted(tuple(m.model_dump().items()) for m in db.exec(select(Member)).all()))
            branches = tuple(sorted((b.id, b.name) for b in db.exec(select(Branch)).all()))
            audit = db.exec(select(func.count()).select_from(AuditEntry)).one()
    finally:
        store.dispose()
    return members, branches, audit


cli_cells = st.one_of(
    st.sampled_from(HOSTILE_CELLS + ["[/x]", "[red]张三", "[bold"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
)


@FUZZ
@given(data=st.data(), rows=roster_rows(cell=cli_cells), no_transfer=st.booleans())
def test_cli_roster_import_is_all_or_nothing(cli_db, tmp_path_factory, capsys, data, rows, no_transfer):
    from bot.cli import main

    headers = data.draw(st.sampled_from([HEADERS, HEADERS, HEADERS, HEADERS[:5], [*HEADERS, "姓名"]]))
    path = tmp_path_factory.mktemp("import") / "fuzz.csv"
    write_csv(path, headers, rows, "utf-8-sig")
    before = member_table(cli_db)
    code = main(["members", "import", str(path), "--config", str(cli_db), *(["--no-transfer"] if no_transfer else [])])
    out, err = capsys.readouterr()
    after = member_table(cli_db)
    event(f"exit {code}")
    if code != 0:
        assert code in (1, 2), code
        assert after == before, "a refused import changed the member table"
        assert "fuzz.csv" in err, err
        return
    members, _, audit = after
    assert audit == before[2] + 1 and "名册导入完成" in out
    branches = dict(after[1])
    for fields in members:
        m = dict(fields)
        assert_storable(
            m["name"],
            m["phone"],
            branches[m["branch_id"]],
            m["joined_on"],
            m["role"],
            m["openid"] or "",
            m["wecom_userid"] or "",
            today=date.today() + timedelta(days=1),
        )
    stored = {dict(f)["phone"]: dict(f) for f in members}
    for row in rows:  # every listed member is there, in 在册, with the branch from the file
        if not is_blank(row, HEADERS[: len(headers)]):
            phone = re.sub(
                r"[\s-]", "", row["手机号"].translate(str.maketrans("０１２３４５６７８９－", "0123456789-"))
            )
            assert stored[phone]["status"] == "在册" and branches[stored[phone]["branch_id"]] == row["支部"].strip()


def test_cli_prints_cell_text_verbatim(cli_db, tmp_path, capsys):
    from bot.cli import main

    path = tmp_path / "markup.csv"
    path.write_text("姓名,手机号,支部,入党日期,角色\n张三,[/x],第一党支部,2001-07-01,党员\n", encoding="utf-8")
    assert main(["members", "import", str(path), "--config", str(cli_db)]) == 1
    assert "[/x]" in capsys.readouterr().err


def test_unicode_digits_never_become_a_phone_number(tmp_path):
    path = tmp_path / "digits.csv"
    path.write_text(
        "姓名,手机号,支部,入党日期,角色\n"
        "甲,1٣٩٠٠٠٠٠٠٠١,一支部,2001-07-01,党员\n"  # Python's \\d matches these
        "乙,1۳۹۰۰۰۰۰۰۰۲,一支部,2001-07-01,党员\n"
        "丙,1③⑨⓪⓪⓪⓪⓪⓪⓪③,一支部,2001-07-01,党员\n"
        "丁,139𝟎𝟎𝟎𝟎𝟎𝟎𝟎𝟓,一支部,2001-07-01,党员\n"
        "戊,１３９００００００06,一支部,2001-07-01,党员\n",
        encoding="utf-8",
    )
    checked = check_roster(path, TODAY)
    assert [e.row for e in checked.errors] == [2, 3, 4, 5]
    assert [m.phone for m in checked.members] == ["13900000006"]  # full-width digits are stored as ASCII


def test_wecom_edge_values_inside_a_valid_encryption(wecom):
    """Cases the random search reaches only rarely, pinned down."""
    now = int(wecom.clock().timestamp())

    def send(sender: str, created: str, nonce: str = NONCE):
        message = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{sender.replace(']]>', ']]]]><![CDATA[>')}]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[积分]]></Content><MsgId>{next(msg_ids)}</MsgId></xml>"
        ).encode()
        encrypted = encrypt(wecom, message)
        return message, post(wecom, signed(wecom, encrypted, nonce), envelope(encrypted))

    for created in ("999999999999", "253402300800"):  # a datetime cannot hold these
        before = snapshot(wecom)
        refused_cleanly(wecom, before, send("liming", created)[1], (400,))
    assert_sane_reply(wecom, *reversed(send("liming", "253402300799")))
    for sender in ("a]]><Content>forged</Content><x>", "\u202e🎉", "<&>"):  # the reply's ToUserName survives
        message, response = send(sender, str(now))
        assert_sane_reply(wecom, response, message)
    for nonce in (" ", "\x1f", "]]>", "<!--", "\u202e"):  # a signed odd nonce: the reply still verifies
        message, response = send("liming", str(now), nonce)
        assert_sane_reply(wecom, response, message)
