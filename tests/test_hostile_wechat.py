"""Hostile input to /wechat: never a 500, never a crash, always a refusal or a reply, and
nothing stored changes on refusal (/wecom, the roster, the question importer and the console
each have their own test_hostile_*.py)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from bot.store import Member
from bot.store.models import ProcessedMessage
from tests.conftest import TOKEN, sha1_sorted
from tests.support.hostile import FUZZ, xml_bodies


def signed_query(env, encrypted: str | None = None) -> str:
    ts, nonce = str(int(env.clock().timestamp())), "77"
    params = {"signature": sha1_sorted(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}
    if encrypted is not None:
        params |= {"encrypt_type": "aes", "msg_signature": sha1_sorted(TOKEN, ts, nonce, encrypted)}
    return urlencode(params)


def state(env) -> tuple[int, int]:
    with env.store.session() as db:
        return len(db.exec(select(ProcessedMessage)).all()), len(
            db.exec(select(Member).where(Member.openid.is_not(None))).all()
        )  # type: ignore[union-attr]


@FUZZ
@given(body=xml_bodies())
def test_random_and_mutated_xml_never_breaks_the_webhook(fuzz_env, body):
    before = state(fuzz_env)
    response = fuzz_env.client.post("/wechat?" + signed_query(fuzz_env), content=body)
    assert response.status_code in (200, 400, 403), response.text
    if response.status_code != 200:
        assert state(fuzz_env) == before  # a refusal records nothing


@FUZZ
@given(encrypted=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())))
def test_bad_ciphertext_is_always_a_clean_refusal(fuzz_env, encrypted):
    before = state(fuzz_env)
    safe = encrypted.replace("]]>", "")
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[{safe}]]></Encrypt></xml>".encode(
        "utf-8", "surrogatepass"
    )
    response = fuzz_env.client.post("/wechat?" + signed_query(fuzz_env, safe), content=body)
    # 400 when it cannot be decrypted; 403 when XML's newline normalisation changed the signed text.
    assert response.status_code in (400, 403)
    assert state(fuzz_env) == before


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["signature", "timestamp", "nonce", "echostr", "encrypt_type", "msg_signature"]),
        st.text(max_size=40),
        max_size=6,
    )
)
def test_hostile_query_strings_are_refused(fuzz_env, query):
    assert fuzz_env.client.get("/wechat?" + urlencode(query)).status_code in (400, 403)
    assert fuzz_env.client.post("/wechat?" + urlencode(query), content=b"<xml/>").status_code in (400, 403)
