"""The simulator page's API builds real signed requests that go through /wechat."""

from __future__ import annotations

import pytest

from tests.conftest import build_env, random_aes_key


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_simulator_round_trip_through_the_webhook(tmp_path, clock, mode):
    env = build_env(tmp_path, clock, BRANCHBOT__SIMULATOR__ENABLED="true", BRANCHBOT__WECHAT__MODE=mode,
                    BRANCHBOT__WECHAT__ENCODING_AES_KEY=random_aes_key())
    with env.client as client:
        assert client.get("/").status_code == 200
        members = client.get("/simulator/api/members").json()
        li = next(m for m in members if m["name"] == "李明")
        assert li["bound"] is False and li["phone_tail"] == "0002"

        def send(text: str) -> str:
            req = client.post("/simulator/api/envelope", json={"openid": li["openid"], "text": text}).json()
            response = client.post(req["url"], content=req["body"].encode())
            assert response.status_code == 200
            return client.post("/simulator/api/open", content=response.content).json()["text"]

        assert "绑定成功" in send("绑定 李明 0002")
        assert "第 1/10 题" in send("答题")
        assert next(m for m in client.get("/simulator/api/members").json() if m["name"] == "李明")["bound"]


def test_simulator_is_off_unless_enabled(env):
    assert env.client.get("/").status_code == 404
    assert env.client.post("/simulator/api/envelope", json={"openid": "x", "text": "帮助"}).status_code == 404


def test_simulator_sends_menu_clicks_and_refuses_bad_input(tmp_path, clock):
    env = build_env(tmp_path, clock, BRANCHBOT__SIMULATOR__ENABLED="true")
    with env.client as client:
        assert client.post("/simulator/api/envelope", json={"openid": "o-1"}).status_code == 400
        assert client.post("/simulator/api/envelope", json={"openid": "o-1", "text": "帮助", "event": "subscribe"}).status_code == 400
        assert client.post("/simulator/api/envelope", json={"openid": "o-1", "event": "VIEW"}).status_code == 400
        req = client.post("/simulator/api/envelope", json={"openid": "o-1", "event": "CLICK", "key": "HELP"}).json()
        response = client.post(req["url"], content=req["body"].encode())
        assert "绑定" in client.post("/simulator/api/open", content=response.content).json()["text"]
