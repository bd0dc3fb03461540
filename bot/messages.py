"""What channels hand to the router and what the router hands back.

Channels turn XML (or terminal input) into an ``Inbound`` and render a reply string;
handlers never see XML.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Inbound:
    channel: str  # "wechat" | "wecom" | "cli"
    sender: str  # OpenID, WeCom user id, or the CLI's member key
    kind: str  # "text", "event", or WeChat's MsgType for anything else
    key: str  # message key: a retried delivery carries the same key
    created_at: datetime
    text: str = ""
    event: str = ""  # subscribe / unsubscribe / click ... (lower case)
    event_key: str = ""
    recipient: str = ""  # our account id (ToUserName)
    raw_type: str = field(default="", compare=False)

    @property
    def conversation(self) -> str:
        """Identifies the sender across messages, for dialog state."""
        return f"{self.channel}:{self.sender}"


def normalise(text: str) -> str:
    """Full-width forms to half-width, collapse white space: 'ＡＣ' and 'A C' alike."""
    text = unicodedata.normalize("NFKC", text or "")
    return " ".join(text.split())


def message_key(channel: str, msg_id: str | None, sender: str, created: str, event: str = "", event_key: str = "") -> str:
    """MsgId when WeChat gives one, otherwise sender + CreateTime + event (+ key)."""
    if msg_id:
        return f"{channel}:m:{msg_id}"
    return f"{channel}:e:{sender}:{created}:{event}:{event_key}"
