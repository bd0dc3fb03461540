"""The simulator page's API sends real signed requests through /wechat, and is safe by
construction: loopback only (listening address, client and Host header), no endpoint
that decrypts what a caller brings, demo members' phone tails only, capped bodies."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.roster import check_file, import_members
from bot.store import ProcessedMessage
from tests.conftest import build_env, random_aes_key

DEMO_ROSTER = Path(__file__).resolve().parent.parent / "bot" / "demo" / "roster.csv"
LOCAL = {"base_url": "http://127.0.0.1:8000", "client": ("127.0.0.1", 50000)}


def local_client(env, **overrides) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(env.client.app, **{**LOCAL, **overrides})


def load_demo(env) -> None:  # type: ignore[no-untyped-def]
    checked = check_file(DEMO_ROSTER, datetime(2030, 1, 1).date())
    with env.store.session() as db:
        import_members(db, checked.members, DEMO_ROSTER.name, demo=True)


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_simulator_round_trip_through_the_webhook(tmp_path, clock, mode):
    env = build_env(
        tmp_path,
        clock,
        BRANCHBOT__SIMULATOR__ENABLED="true",
        BRANCHBOT__WECHAT__MODE=mode,
        BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key(),
    )
    load_demo(env)
    with local_client(env) as client:
        assert client.get("/").status_code == 200
        members = client.get("/simulator/api/members").json()
        li = next(m for m in members if m["name"] == "李红梅")
        assert li["demo"] and li["bound"] is False and li["phone_tail"] == "0002"

        def send(text: str) -> str:
            response = client.post("/simulator/api/send", json={"openid": li["openid"], "text": text})
            assert response.status_code == 200, response.text
            return response.json()["text"]

        assert "绑定成功" in send("绑定 李红梅 0002")
        assert "第 1/10 题" in send("答题")
        assert next(m for m in client.get("/simulator/api/members").json() if m["name"] == "李红梅")["bound"]
        assert env.count(ProcessedMessage) == 2  # both went through the webhook's record


def test_simulator_never_shows_a_real_members_phone_tail(tmp_path, clock):
    env = build_env(tmp_path, clock, bank=None, BRANCHBOT__SIMULATOR__ENABLED="true")
    load_demo(env)
    with local_client(env) as client:
        members = client.get("/simulator/api/members").json()
    real = [m for m in members if not m["demo"]]
    demo = [m for m in members if m["demo"]]
    assert real and demo
    assert all(m["phone_tail"] is None for m in real)
    assert all(m["phone_tail"] and len(m["phone_tail"]) == 4 for m in demo)
    assert "13900000002"[-4:] not in str(real)


def test_simulator_has_no_endpoint_that_signs_or_opens_for_the_caller(tmp_path, clock):
    env = build_env(
        tmp_path,
        clock,
        bank=None,
        BRANCHBOT__SIMULATOR__ENABLED="true",
        BRANCHBOT__WECHAT__MODE="safe",
        BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key(),
    )
    with local_client(env) as client:
        captured = env.wechat("o-victim").text_request("积分").body  # an encrypted message seen on the wire
        assert client.post("/simulator/api/open", content=captured.encode()).status_code in (404, 405)
        assert client.post("/simulator/api/envelope", json={"openid": "o-x", "text": "帮助"}).status_code in (404, 405)
        reply = client.post("/simulator/api/send", json={"openid": "o-x", "text": "帮助"})
        assert reply.status_code == 200 and set(reply.json()) == {"text"}  # the text only, no signed request


@pytest.mark.parametrize(
    "client_host, host_header",
    [
        ("203.0.113.7", "127.0.0.1:8000"),  # a remote client
        ("127.0.0.1", "evil.example:8000"),  # DNS rebinding: a local browser, an attacker's name
        ("127.0.0.1", "192.168.1.5:8000"),
        ("::ffff:203.0.113.7", "localhost"),
    ],
)
def test_simulator_answers_only_loopback_clients_naming_a_loopback_host(tmp_path, clock, client_host, host_header):
    env = build_env(tmp_path, clock, bank=None, BRANCHBOT__SIMULATOR__ENABLED="true")
    with local_client(env, client=(client_host, 50000), headers={"host": host_header}) as client:
        for method, path in (("GET", "/"), ("GET", "/simulator/api/members"), ("POST", "/simulator/api/send")):
            response = client.request(
                method, path, json={"openid": "o-x", "text": "帮助"} if method == "POST" else None
            )
            assert response.status_code == 403, (method, path, response.status_code)
            assert "13900000" not in response.text
    assert env.count(ProcessedMessage) == 0


@pytest.mark.parametrize("host_header", ["localhost:8000", "127.0.0.1", "[::1]:8000"])
def test_simulator_accepts_loopback_names(tmp_path, clock, host_header):
    env = build_env(tmp_path, clock, bank=None, BRANCHBOT__SIMULATOR__ENABLED="true")
    with local_client(env, headers={"host": host_header}) as client:
        assert client.get("/simulator/api/members").status_code == 200


def test_simulator_is_not_mounted_on_a_public_address(tmp_path, clock):
    env = build_env(tmp_path, clock, bank=None, BRANCHBOT__SIMULATOR__ENABLED="true", BRANCHBOT__SERVER__HOST="0.0.0.0")
    with local_client(env) as client:
        assert client.get("/").status_code == 404
        assert client.get("/simulator/api/members").status_code == 404
        assert client.post("/simulator/api/send", json={"openid": "o-x", "text": "帮助"}).status_code == 404


def test_simulator_is_off_unless_enabled(env):
    with local_client(env) as client:
        assert client.get("/").status_code == 404
        assert client.post("/simulator/api/send", json={"openid": "x", "text": "帮助"}).status_code == 404


def test_simulator_sends_menu_clicks_and_refuses_bad_input(tmp_path, clock):
    env = build_env(tmp_path, clock, BRANCHBOT__SIMULATOR__ENABLED="true")
    with local_client(env) as client:
        send = "/simulator/api/send"
        assert client.post(send, json={"openid": "o-1"}).status_code == 400
        assert client.post(send, json={"openid": "o-1", "text": "帮助", "event": "subscribe"}).status_code == 400
        assert client.post(send, json={"openid": "o-1", "event": "VIEW"}).status_code == 400
        big = client.post(
            send,
            content=b'{"openid": "o-1", "text": "' + b"x" * 70_000 + b'"}',
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 400 and "64 KiB" in big.text
        assert "绑定" in client.post(send, json={"openid": "o-1", "event": "CLICK", "key": "HELP"}).json()["text"]


def test_simulator_send_refuses_a_cross_site_simple_post(tmp_path, clock):
    """A web page elsewhere can make the operator's browser POST text/plain to loopback
    without a CORS preflight; the simulator takes JSON only, which needs one."""
    env = build_env(tmp_path, clock, bank=None, BRANCHBOT__SIMULATOR__ENABLED="true")
    with local_client(env) as client:
        body = '{"openid": "o-x", "text": "帮助"}'
        for headers in (
            {"content-type": "text/plain"},
            {"content-type": "application/x-www-form-urlencoded"},
            {"content-type": "application/json", "origin": "https://evil.example"},
        ):
            response = client.post("/simulator/api/send", content=body.encode(), headers=headers)
            assert response.status_code in (403, 415), (headers, response.status_code)
        ok = client.post(
            "/simulator/api/send",
            content=body.encode(),
            headers={"content-type": "application/json", "origin": "http://127.0.0.1:8000"},
        )
        assert ok.status_code == 200
    assert env.count(ProcessedMessage) == 1
