"""A loopback port for a server a test starts (the fake WeChat API, `branchbot serve`)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1. Another process may take it before
    the server binds it; servers a test starts in-process should bind a socket instead."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bound_socket() -> socket.socket:
    """A socket bound to a free loopback port, for a server this process runs (pass it to
    ``uvicorn.Server.run(sockets=[...])``): the port is held from the start, so another
    test run on the machine cannot take it between choosing and listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock
