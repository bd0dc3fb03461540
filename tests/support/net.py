"""Loopback ports for servers a test starts (the fake WeChat API, `branchbot serve`)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_pick = random.SystemRandom()  # not the seeded global generator: two runs at once must not pick alike


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free loopback port for a server started in another process, which binds it later.

    Drawn below the kernel's ephemeral range: every outgoing connection on the machine (the
    suite's own HTTP and PostgreSQL clients, another run's) takes its local port from that
    range, and one could take a port handed out there before the server binds it. Only
    another test drawing the same port in the same second could now; a server started in
    this process should bind a socket instead (``bound_socket``)."""
    start = _ephemeral_start()
    low = max(1024, start - 12000)
    for _ in range(200):
        port = _pick.randrange(low, start)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # nothing free below the range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bound_socket() -> socket.socket:
    """A socket bound to a free loopback port, for a server this process runs (pass it to
    ``uvicorn.Server.run(sockets=[...])``): the port is held from the start, so another
    test run on the machine cannot take it between choosing and listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock
