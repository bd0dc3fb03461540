"""The WeCom / 政务微信 app callback (/wecom): always encrypted, ReceiveId = corp id."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.replies import TextReply

from bot.channels.common import (
    cdata_safe,
    check_body,
    check_fresh,
    check_signature,
    decrypt,
    open_encrypted,
    reply_nonce,
)
from bot.channels.wechat import Opened
from bot.config import WecomConfig


class WecomChannel:
    name = "wecom"

    def __init__(self, cfg: WecomConfig, replay_window: int) -> None:
        self.cfg = cfg
        self.replay_window = replay_window
        self._crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.corp_id)
        self._prp = PrpCrypto(self._crypto.key)

    def verify_url(self, params: Mapping[str, str], now: datetime) -> str:
        """GET handshake: the echostr is encrypted; answer its plaintext."""
        timestamp, nonce, echo = params.get("timestamp", ""), params.get("nonce", ""), params.get("echostr", "")
        check_fresh(timestamp, now, self.replay_window)
        check_signature(params.get("msg_signature"), self.cfg.token, timestamp, nonce, echo)
        return decrypt(self._prp, echo, self.cfg.corp_id).decode()

    def open(self, params: Mapping[str, str], body: bytes, now: datetime) -> Opened:
        check_body(body)
        timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
        check_fresh(timestamp, now, self.replay_window)
        inbound = open_encrypted(
            self.name, body, params.get("msg_signature"), self.cfg.token, timestamp, nonce, self._prp, self.cfg.corp_id
        )
        return Opened(inbound, True, nonce)

    def seal(self, opened: Opened, text: str) -> str:
        if not text:
            return ""
        inbound = opened.inbound
        xml = TextReply(
            source=self.cfg.corp_id, target=cdata_safe(inbound.sender), content=cdata_safe(text), time=int(time.time())
        ).render()
        return self._crypto.encrypt_message(xml, reply_nonce(opened.nonce))
