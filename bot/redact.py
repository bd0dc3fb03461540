"""Secrets never reach a terminal or a log: masking for what we print, a formatter for what we log.

``masked`` is the configuration as doctor shows it; ``redact`` replaces every configured
secret inside any text (an exception message, a URL in a traceback); ``setup_logging``
installs a formatter that redacts each finished log line, tracebacks included, so a
library that logs a request URL with a robot key in it cannot leak the key either.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

from bot.config import SECRET_KEYS, Config

MASK = "******"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _password(url: str) -> str:
    """The password in a URL as written, even when it contains ``@`` (the last ``@`` ends it)."""
    _, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0:
        return ""
    return rest[:at].partition(":")[2]


def mask_url(url: str) -> str:
    """A database URL with its password hidden; over-masks rather than leak a piece."""
    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0 or ":" not in rest[:at]:
        return url
    return f"{scheme}://{rest[:at].partition(':')[0]}:{MASK}@{rest[at + 1 :]}"


def secret_values(config: Config) -> list[str]:
    """Every secret the configuration holds, longest first (so no secret is half-replaced).

    A password is also listed decoded and in the pieces a driver's error might quote."""
    values = [
        config.wechat.token,
        config.wechat.encoding_aes_key,
        config.wechat.app_secret,
        config.wecom.token,
        config.wecom.encoding_aes_key,
        config.wecom.secret,
        *config.robots.keys.values(),
    ]
    password = _password(config.database.url)
    if password:
        values += [password, unquote(password)]
        values += [piece for piece in re.split(r"[@:/]", unquote(password)) if len(piece) >= 4]
    return sorted({v for v in values if v}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def masked(config: Config) -> dict[str, Any]:
    """The effective configuration with every secret replaced by a mark that it is set."""

    def walk(node: Any, key: str = "") -> Any:
        if key in SECRET_KEYS:
            if isinstance(node, dict):
                return {k: (MASK if v else "") for k, v in node.items()}
            return MASK if node else ""
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        return node

    data = config.model_dump(mode="json")
    data["database"]["url"] = mask_url(data["database"]["url"])
    masked: dict[str, Any] = walk(data)
    return masked


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then hides every configured secret in the whole line."""

    def __init__(self, secrets: list[str], fmt: str = LOG_FORMAT) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def setup_logging(config: Config | None, level: int) -> None:
    """Root logging for the CLI and each serving process; every handler redacts secrets."""
    root = logging.getLogger()
    if not root.handlers:  # under pytest, or in a worker that inherited handlers, keep what is there
        logging.basicConfig(level=level, format=LOG_FORMAT)
    secrets = secret_values(config) if config is not None else []
    for handler in root.handlers:
        handler.setFormatter(RedactingFormatter(secrets))
    # Alembic announces its dialect at INFO each time serve checks the schema version.
    logging.getLogger("alembic.runtime.migration").setLevel(max(level, logging.WARNING))
