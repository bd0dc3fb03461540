"""The Official Account callback (/wechat): plain, compatible and safe modes."""

from __future__ import annotations

from collections.abc import Mapping

from bot.channels.base import Channel
from bot.channels.common import Refusal, check_signature
from bot.config import WechatConfig
from bot.messages import Inbound


class WechatChannel(Channel):
    name = "wechat"
    empty_reply = "success"

    def __init__(self, cfg: WechatConfig) -> None:
        super().__init__(
            token=cfg.token, aes_key=cfg.encoding_aes_key, receive_id=cfg.app_id, replay_window=cfg.replay_window
        )
        self.mode = cfg.mode

    def _echo(self, params: Mapping[str, str]) -> str:
        """``signature`` over token, timestamp and nonce; ``echostr`` goes back as sent."""
        check_signature(params.get("signature"), self.token, params.get("timestamp", ""), params.get("nonce", ""))
        echo = params.get("echostr")
        if not echo:
            raise Refusal(400, "missing echostr")
        return echo

    def _encrypted(self, params: Mapping[str, str]) -> bool:
        encrypted = params.get("encrypt_type", "").lower() == "aes"
        if self.mode != "plain" and self._cipher is not None and not encrypted:
            # WeChat sends every callback encrypted in compatible mode too (with the
            # plaintext beside it): a plaintext-only request, whose signature does not
            # cover the body, is a forgery or a replay.
            raise Refusal(403, f"plaintext message while in {self.mode} mode")
        if self.mode == "plain" and encrypted:
            raise Refusal(400, "encrypted message while in plain mode")
        return encrypted

    def _reply_source(self, inbound: Inbound) -> str:
        return inbound.recipient
