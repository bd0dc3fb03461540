"""The database going away for a few seconds: members get a short apology, nothing
half-done is kept, and the bot recovers by itself when the database is back."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import PG_URL, build_env


class TcpProxy:
    """A loopback TCP forwarder the test can cut and restore, standing in for the network."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.links: list[socket.socket] = []
        self.listener.listen(32)
        self.up.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self.links += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self.up.clear()
        for link in self.links:
            try:
                link.shutdown(socket.SHUT_RDWR)
                link.close()
            except OSError:
                pass
        self.links.clear()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.mark.skipif(not PG_URL, reason="needs BRANCHBOT_TEST_PG_URL (the outage is staged between the bot and PostgreSQL)")
def test_database_outage_gets_an_apology_and_recovers(tmp_path, clock, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("an outage needs a database behind a network connection")
    parts = urlsplit(database_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    try:
        via_proxy = urlunsplit(parts._replace(netloc=parts.netloc.replace(f"{parts.hostname}:{parts.port or 5432}",
                                                                          f"127.0.0.1:{proxy.port}")))
        env = build_env(tmp_path, clock, database_url=via_proxy)
        with env.client:
            user = env.wechat("o-li")
            assert "绑定成功" in user.say("绑定 李明 0002")
            proxy.cut()
            during = user.post(user.text_request("积分"))
            assert during.status_code == 200
            assert "系统暂时繁忙" in user.reply_text(during.text)
            assert env.client.get("/healthz").status_code == 503
            proxy.restore()
            assert "李明同志的积分" in user.say("积分")  # recovered by itself: no restart
            assert env.client.get("/healthz").status_code == 200
    finally:
        proxy.close()
