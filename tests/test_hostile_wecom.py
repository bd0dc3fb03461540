"""Hostile input to /wecom, completing test_hostile_wechat.py.

/wecom: random and mutated envelopes, bad ciphertext, hostile XML *inside* a correctly
encrypted and signed payload (so it reaches the parser), wrong ReceiveId, hostile query
strings. Always 200/400/403, a refusal stores nothing, and a 200 carries a reply that
decrypts, verifies and parses, addressed to the sender.
"""

from __future__ import annotations

import base64
import itertools
import re
import socket
import struct
from datetime import UTC, datetime
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import pytest
import xmltodict
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from bot.app import APOLOGY
from bot.store import Member
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
from tests.conftest import CORP_ID, WECOM_TOKEN, FakeClock, build_env, random_aes_key, sha1_sorted
from tests.support.hostile import NO_SURROGATES, xml_bodies

FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
FEW = settings(FUZZ, max_examples=40)

NONCE = "1372623149"
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
