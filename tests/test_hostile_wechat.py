"""Hostile input to /wechat, /wecom and the importers: never a 500, never a crash,
always a refusal or a reply, and nothing stored changes on refusal."""

from __future__ import annotations

import base64
import csv
import re
from datetime import UTC
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.store import Member, Question
from bot.store.models import ProcessedMessage
from quizzes.bank import check_file
from tests.conftest import TOKEN, build_env, random_aes_key, sha1_sorted

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

FIELDS = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Event", "EventKey", "Encrypt"]
text_values = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
    st.sampled_from(
        [
            "text",
            "event",
            "image",
            "",
            "-1",
            "99999999999999999999",
            "]]>",
            "&amp;",
            "&lol;",
            "\u202e",
            "🎉" * 20,
            "subscribe",
            "CLICK",
            "<a>b</a>",
            "0" * 5000,
        ]
    ),
)


@st.composite
def xml_bodies(draw) -> bytes:
    parts = []
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=8)):
        value = draw(text_values)
        wrap = draw(st.booleans())
        value = value.replace("]]>", "]]]]><![CDATA[>") if wrap else re.sub(r"[<>&]", "", value)
        parts.append(f"<{name}>" + (f"<![CDATA[{value}]]>" if wrap else value) + f"</{name}>")
    body = "<xml>" + "".join(parts) + "</xml>"
    mutation = draw(st.sampled_from(["none", "truncate", "prefix", "doctype", "junk"]))
    if mutation == "truncate":
        body = body[: draw(st.integers(0, len(body)))]
    elif mutation == "prefix":
        body = draw(st.text(max_size=20)) + body
    elif mutation == "doctype":
        body = '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + body.replace(
            "</xml>", "<Content>&e;</Content></xml>"
        )
    elif mutation == "junk":
        return draw(st.binary(max_size=500))
    return body.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory):
    from datetime import datetime

    from tests.conftest import FakeClock

    clock = FakeClock(datetime(2026, 11, 10, 1, 0, tzinfo=UTC))
    env = build_env(
        tmp_path_factory.mktemp("fuzz"),
        clock,
        BRANCHBOT__WECHAT__MODE="compatible",
        BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key(),
    )
    with env.client:
        yield env


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


cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["单选", "多选", "判断", "对", "错", "ACD", "Z", "", "=cmd|' /C calc'!A0", "1e9"]),
)


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=15), max_size=6))
def test_question_importer_refuses_cleanly(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("q") / "fuzz.csv"
    header = [
        "题型",
        "题干",
        "选项A",
        "选项B",
        "选项C",
        "选项D",
        "选项E",
        "选项F",
        "答案",
        "解析",
        "分类",
        "来源",
        "难度",
    ]
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as f:
        csv.writer(f).writerows([header, *rows])
    try:
        checked = check_file(path)
    except Exception as exc:  # only the documented whole-file refusal may escape
        from bot.tabular import FileProblem

        assert isinstance(exc, FileProblem), exc
        return
    for error in checked.errors:
        assert re.match(r"fuzz\.csv 第 \d+ 行 [A-M] 列「.+」：", str(error)), str(error)
    for question in checked.questions:
        assert question.answer and question.explanation and question.source


def test_rejected_import_leaves_the_bank_as_it_was(fuzz_env, tmp_path):
    from bot.cli import main

    with fuzz_env.store.session() as db:
        before = [(q.id, q.stem, q.answer) for q in db.exec(select(Question)).all()]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "题型,题干,选项A,选项B,答案,解析,分类,来源\n单选,一道新题？,甲,乙,A,解析,党史,来源\n单选,,甲,乙,C,解析,党史,来源\n",
        encoding="utf-8",
    )
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{fuzz_env.config.database.url}"\n', encoding="utf-8")
    assert main(["quiz", "import", str(bad), "--config", str(config)]) == 1
    with fuzz_env.store.session() as db:
        assert [(q.id, q.stem, q.answer) for q in db.exec(select(Question)).all()] == before
