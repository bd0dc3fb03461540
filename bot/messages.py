"""What channels hand to the router and what the router hands back.

Channels turn XML (or terminal input) into an ``Inbound`` and render a reply string;
handlers never see XML.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
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
    scan_result: str = ""  # ScanCodeInfo/ScanResult of a scancode_push / scancode_waitmsg menu event

    @property
    def conversation(self) -> str:
        """Identifies the sender across messages, for dialog state."""
        return f"{self.channel}:{self.sender}"


# Message kinds a member can send (WeChat's MsgType, lower case). Anything else that is
# correctly signed is answered ``success`` and counted as ``other``: metric labels and
# log fields never take an attacker-chosen value raw.
MEMBER_KINDS = frozenset({"text", "image", "voice", "video", "shortvideo", "location", "link", "file"})
KNOWN_KINDS = MEMBER_KINDS | {"event"}


def kind_label(kind: str) -> str:
    """The metric label for a message kind: one of a fixed set."""
    return kind if kind in KNOWN_KINDS else "other"


def log_safe(value: object, limit: int = 64) -> str:
    """A value fit for a log line: anything unprintable (newlines, terminal escapes,
    Unicode line separators) escaped, so no one forges a log line; cut to ``limit``."""
    text = str(value)
    cut = len(text) > limit
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text[:limit])
    return escaped + ("…" if cut else "")


def normalise(text: str) -> str:
    """Full-width forms to half-width, collapse white space: 'ＡＣ' and 'A C' alike."""
    text = unicodedata.normalize("NFKC", text or "")
    return " ".join(text.split())


def message_key(
    channel: str, msg_id: str | None, sender: str, created: str, event: str = "", event_key: str = ""
) -> str:
    """MsgId when WeChat gives one, otherwise sender + CreateTime + event (+ key); a key
    too long for the store's column (a long EventKey) is hashed."""
    if msg_id:
        return f"{channel}:m:{msg_id}"
    key = f"{channel}:e:{sender}:{created}:{event}:{event_key}"
    return key if len(key) <= 200 else f"{channel}:h:{hashlib.sha256(key.encode()).hexdigest()}"


# A reply may carry a one-time secret (a console login link). The member sees it once,
# in the answer to their message; what the store keeps (the recorded reply that answers
# WeChat's retries, a late reply pushed through the outbox) has it replaced by a hint.
_SECRET = re.compile("\x02(.*?)\x03", re.S)
CONCEALED = "（链接只显示一次；如未收到，请重新发送「后台」获取新链接）"


def secret(text: str) -> str:
    """Mark ``text`` as shown once and never stored."""
    return f"\x02{text}\x03"


def reveal(reply: str) -> str:
    """The reply as the member sees it now."""
    return _SECRET.sub(lambda m: m.group(1), reply)


def conceal(reply: str) -> str:
    """The reply as it may be stored."""
    return _SECRET.sub(CONCEALED, reply)
