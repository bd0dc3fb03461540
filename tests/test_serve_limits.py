"""Slow clients (issue 11, item 8): a real `branchbot serve` closes idle, half-sent and
dripping connections after [server] timeouts, answers 503 beyond
server.limit_concurrency, and raises its open-file soft limit."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from bot.store import create_store
from bot.store.migrate import upgrade
from tests.conftest import TOKEN, wait_healthy
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent


def closed_after(port: int, sent: list[bytes], gap: float = 0.0, limit: float = 30.0) -> float:
    """Open a connection, send the pieces (``gap`` seconds apart, while the server lets
    us), then wait for the server to close it; the seconds until it did."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        try:
            for piece in sent:
                sock.sendall(piece)
                if gap:
                    time.sleep(gap)
            while sock.recv(4096):  # whatever the server says before closing
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        except TimeoutError:
            return float("inf")
    return time.monotonic() - started


def lower_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))


def test_serve_closes_slow_connections_and_raises_the_file_limit(tmp_path):
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    store = create_store(database)
    upgrade(store)
    store.dispose()
    port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text("", encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHBOT__")}
    environ |= {
        "BRANCHBOT__DATABASE__URL": database,
        "BRANCHBOT__WECHAT__TOKEN": TOKEN,
        "BRANCHBOT__SERVER__PORT": str(port),
        "BRANCHBOT__SCHEDULER__ENABLED": "false",
        "BRANCHBOT__SIMULATOR__ENABLED": "false",
        "BRANCHBOT__SERVER__HEADER_TIMEOUT_SECONDS": "1",
        "BRANCHBOT__SERVER__BODY_TIMEOUT_SECONDS": "1",
        "BRANCHBOT__SERVER__KEEP_ALIVE_SECONDS": "1",
        "BRANCHBOT__SERVER__LIMIT_CONCURRENCY": "8",
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(config)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lower_file_limit,
        )
    try:
        wait_healthy(port, process, log=log)
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert soft == "unlimited" or int(soft) > 256 or hard <= 256, limits

        head = f"POST /wechat?signature=x&timestamp=1&nonce=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        cases = {
            "idle": ([], 0.0),
            "half headers": ([head.encode()], 0.0),
            "dripping headers": ([bytes([b]) for b in head.encode()], 0.2),  # a byte every 0.2 s: slowloris
            "half body": (
                [(head + "Content-Type: text/xml\r\nContent-Length: 5000\r\n\r\n<xml><ToUser").encode()],
                0.0,
            ),
        }
        took: dict[str, float] = {}
        threads = [
            threading.Thread(target=lambda name=name, case=case: took.__setitem__(name, closed_after(port, *case)))
            for name, case in cases.items()
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200  # still serving meanwhile
        for thread in threads:
            thread.join()
        # 1 s deadlines: closed by the server, long before our own 30 s limit however busy the machine.
        assert all(seconds < 15 for seconds in took.values()), took

        # An idle keep-alive connection after a complete request is closed too.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/healthz").status_code == 200
        assert closed_after(port, [f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()]) < 15

        # Beyond server.limit_concurrency connections, 503 at once; the idle ones are
        # closed by the header deadline, and then it serves again. They count only until that
        # 1 s deadline: a machine too busy to ask in time opens them again (never a 200 past it).
        answers: list[int] = []
        for _ in range(5):
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
            try:
                time.sleep(0.2)
                answers.append(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code)
                if answers[-1] != 503:
                    continue
                # Serving again once the header deadline has closed the idle ones: polled, with
                # a bound only against a server that never recovers.
                deadline = time.monotonic() + 60
                while httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code != 200:
                    assert time.monotonic() < deadline, "still refusing after the idle connections timed out"
                    time.sleep(0.2)
                break
            finally:
                for sock in idle:
                    sock.close()
        assert answers[-1] == 503, answers
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    output = log.read_text(errors="replace")
    assert "Traceback" not in output, output[-3000:]
    assert "hung up mid-body" in output


def test_serve_runs_on_uvloop_and_httptools_when_installed(tmp_path):
    """`branchbot serve` hands uvicorn loop="auto" (uvloop when importable) and the guarded
    httptools protocol; the loop uvicorn would build is uvloop's wherever uvloop is installed."""
    import importlib.util

    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from bot.config import load_config
    from bot.serving import uvicorn_options

    config = load_config(ROOT / "config.toml")
    options = uvicorn_options(config)
    assert options["loop"] == "auto" and issubclass(options["http"], HttpToolsProtocol)
    factory = uvicorn.Config("bot.app:app_from_environment", factory=True, **options).get_loop_factory()
    assert factory is not None
    loop = factory()
    try:
        uvloop_installed = importlib.util.find_spec("uvloop") is not None
        assert (type(loop).__module__.startswith("uvloop")) == uvloop_installed
    finally:
        loop.close()
