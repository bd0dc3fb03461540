"""The Official Account callback (/wechat): plain, compatible and safe modes."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.replies import TextReply

from bot.channels.common import (
    Refusal,
    cdata_safe,
    check_body,
    check_fresh,
    check_signature,
    open_encrypted,
    reply_nonce,
    to_inbound,
)
from bot.config import WechatConfig
from bot.messages import Inbound


@dataclass(frozen=True)
class Opened:
    inbound: Inbound
    encrypted: bool
    nonce: str


class WechatChannel:
    name = "wechat"

    def __init__(self, cfg: WechatConfig) -> None:
        self.cfg = cfg
        self._crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.app_id) if cfg.encoding_aes_key else None
        self._prp = PrpCrypto(self._crypto.key) if self._crypto else None

    def verify_url(self, params: Mapping[str, str], now: datetime) -> str:
        """GET handshake: echo ``echostr`` when ``signature`` checks out."""
        check_fresh(params.get("timestamp"), now, self.cfg.replay_window)
        check_signature(params.get("signature"), self.cfg.token, params.get("timestamp", ""), params.get("nonce", ""))
        echo = params.get("echostr")
        if not echo:
            raise Refusal(400, "missing echostr")
        return echo

    def open(self, params: Mapping[str, str], body: bytes, now: datetime) -> Opened:
        check_body(body)
        timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
        check_fresh(timestamp, now, self.cfg.replay_window)
        encrypted = params.get("encrypt_type", "").lower() == "aes"
        if self.cfg.mode != "plain" and self._crypto is not None and not encrypted:
            # WeChat sends every callback encrypted in compatible mode too (with the
            # plaintext beside it): a plaintext-only request, whose signature does not
            # cover the body, is a forgery or a replay.
            raise Refusal(403, f"plaintext message while in {self.cfg.mode} mode")
        if self.cfg.mode == "plain" and encrypted:
            raise Refusal(400, "encrypted message while in plain mode")
        if not encrypted:
            check_signature(params.get("signature"), self.cfg.token, timestamp, nonce)
            return Opened(to_inbound(self.name, body), False, nonce)
        inbound = open_encrypted(
            self.name, body, params.get("msg_signature"), self.cfg.token, timestamp, nonce, self._prp, self.cfg.app_id
        )
        return Opened(inbound, True, nonce)

    def seal(self, opened: Opened, text: str) -> str:
        """The HTTP body for a reply: XML (encrypted when the message was), or 'success'."""
        if not text:
            return "success"
        inbound = opened.inbound
        xml = TextReply(
            source=cdata_safe(inbound.recipient),
            target=cdata_safe(inbound.sender),
            content=cdata_safe(text),
            time=int(time.time()),
        ).render()
        if opened.encrypted:
            assert self._crypto is not None
            return self._crypto.encrypt_message(xml, reply_nonce(opened.nonce))
        return xml
