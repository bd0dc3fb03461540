"""The SQLite writer lock has a bounded wait (database.lock_timeout_seconds): a message
that cannot get it answers with the short apology, and the stuck holder is logged."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from bot.app import APOLOGY
from tests.conftest import TOKEN, build_env


@pytest.fixture
def busy_env(tmp_path, clock):
    env = build_env(tmp_path, clock, bank=None, BRANCHBOT__DATABASE__LOCK_TIMEOUT_SECONDS="0.3")
    with env.client:
        yield env
    env.store.dispose()


def test_a_thread_stuck_in_a_transaction_gets_members_an_apology_not_a_hang(busy_env, caplog):
    env = busy_env
    user = env.wechat("o-li")
    assert "绑定成功" in user.say("绑定 李明 0002")
    taken, release = threading.Event(), threading.Event()

    def stuck() -> None:
        with env.store.session():
            taken.set()
            release.wait(30)

    holder = threading.Thread(target=stuck, name="stuck-import")
    holder.start()
    try:
        assert taken.wait(60)
        with caplog.at_level(logging.WARNING, logger="branchbot.store"):
            assert user.say("积分") == APOLOGY
        [line] = [r.getMessage() for r in caplog.records if r.name == "branchbot.store"]
        assert "writer lock" in line and "'stuck-import'" in line and " s" in line
        assert TOKEN not in caplog.text
    finally:
        release.set()
        holder.join()
    assert "李明同志的积分" in user.say("积分")  # the lock is free again: answered as usual


def test_another_process_holding_the_lock_is_named_by_pid(busy_env, caplog):
    env = busy_env
    lock_file = f"{env.config.database.url.removeprefix('sqlite:///')}-writer.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, os, sys, time\n"
                f"fd = os.open({lock_file!r}, os.O_RDWR | os.O_CREAT)\n"
                "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                "print('held', flush=True)\n"
                "time.sleep(30)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with caplog.at_level(logging.WARNING, logger="branchbot.store"):
            started = time.monotonic()
            assert env.wechat("o-x").say("帮助") == APOLOGY
            assert time.monotonic() - started < 10  # bounded; not a timing benchmark
        assert f"pid {holder.pid}" in caplog.text
    finally:
        holder.kill()
        holder.wait()
    assert "绑定" in env.wechat("o-x").say("帮助")
