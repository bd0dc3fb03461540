"""How `branchbot serve` runs uvicorn: bounded waits for slow clients, a concurrency
limit, and enough file descriptors.

uvicorn closes an idle keep-alive connection, but not a connection that never finishes
its request line and headers, nor one that stops half way through its body: 1,100 such
connections used every descriptor of the common 1,024 limit and took /healthz down.
``GuardedHttpToolsProtocol`` gives each request a deadline for its headers (from the
connection's first byte, or from its opening for a new connection) and another for its
body, then closes the connection. Put nginx in front all the same (README, 部署).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.config import Config, ServerConfig

log = logging.getLogger("branchbot.serve")
WANTED_FILES = 65536


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body read deadlines.

    The timeouts are class attributes set by ``configure`` in each serving process
    (uvicorn builds one protocol object per connection, and pickles this class by
    reference for ``--workers``)."""

    header_timeout: float = 10.0
    body_timeout: float = 20.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.logger.warning("closed a connection that sent no complete request in time")
            self.transport.close()

    # uvicorn's HttpToolsProtocol narrows asyncio's BaseTransport to Transport (with its own ignore); this mirrors it.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)  # a connection that never sends a request line

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_deadline is None:  # the next request on a kept-alive connection
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def configure(server: ServerConfig) -> None:
    GuardedHttpToolsProtocol.header_timeout = server.header_timeout_seconds
    GuardedHttpToolsProtocol.body_timeout = server.body_timeout_seconds


def uvicorn_options(config: Config) -> dict[str, Any]:
    """uvicorn.run keyword arguments from [server]."""
    server = config.server
    configure(server)
    return dict(
        host=server.host,
        port=server.port,
        log_level="info",
        access_log=False,
        # uvloop when it is installed (uvicorn[standard] and the `fast` extra bring it),
        # asyncio otherwise; HTTP is always parsed by httptools (our guarded protocol).
        loop="auto",
        http=GuardedHttpToolsProtocol,
        timeout_keep_alive=server.keep_alive_seconds,
        limit_concurrency=server.limit_concurrency,
    )


def raise_file_limit(wanted: int = WANTED_FILES) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit (no privilege needed);
    (before, after). Each connection and each database handle is a descriptor."""
    try:
        import resource
    except ImportError:  # not on this platform
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
            return (soft, soft)
        return (soft, target)
    return (soft, soft)
