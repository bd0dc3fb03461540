"""The WeCom / 政务微信 app callback (/wecom): always encrypted, ReceiveId = corp id."""

from __future__ import annotations

from collections.abc import Mapping

from bot.channels.base import Channel
from bot.channels.common import Refusal, check_signature
from bot.config import WecomConfig
from bot.messages import Inbound


class WecomChannel(Channel):
    name = "wecom"
    empty_reply = ""

    def __init__(self, cfg: WecomConfig, replay_window: int) -> None:
        super().__init__(
            token=cfg.token, aes_key=cfg.encoding_aes_key, receive_id=cfg.corp_id, replay_window=replay_window
        )

    def _echo(self, params: Mapping[str, str]) -> str:
        """``msg_signature`` covers the encrypted echostr; answer its plaintext."""
        timestamp, nonce, echo = params.get("timestamp", ""), params.get("nonce", ""), params.get("echostr", "")
        check_signature(params.get("msg_signature"), self.token, timestamp, nonce, echo)
        if not echo:
            raise Refusal(400, "missing Encrypt")
        return self.decrypt(echo).decode()

    def _encrypted(self, params: Mapping[str, str]) -> bool:
        return True

    def _reply_source(self, inbound: Inbound) -> str:
        return self.receive_id
