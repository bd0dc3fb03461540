#!/usr/bin/env python3
"""Load benchmark of the /wechat webhook in SAFE mode, beside a minimal WeRoBot echo bot.

Run by hand (never in CI), from the repository root:

    .venv/bin/python bench/webhook.py                 # about 2 minutes
    .venv/bin/python bench/webhook.py --json /tmp/webhook.json --py-spy /tmp/branchbot.collapsed

What it does, all inside a temporary directory that is removed at the end:

* BranchBot: writes config.toml (SQLite, safe mode, AES key generated at run time), a
  roster CSV (half the members pre-bound to an OpenID, half unbound), runs
  ``branchbot init`` / ``quiz import`` (a synthetic bank only when the bundled one is
  short) / ``members import``, then ``branchbot serve`` (one uvicorn process).
* Echo bot: a ~15-line WeRoBot script whose text handler returns the content, served by
  gunicorn with ONE worker process (gthread, keep-alive), same token / AES key / app id.
* Load: one asyncio process with a tiny keep-alive HTTP/1.1 client (raw streams, far
  cheaper per request than httpx so the generator does not eat the second core).
  All requests are encrypted and signed BEFORE each phase; every request has a unique
  MsgId and a fresh timestamp. A member's messages go out in order, one in flight per
  member, many members at once.
* Phases per server: warm-up (discarded), closed loop (N members back to back, fixed
  duration -> max throughput), open loop (fixed rate; latency measured from each
  message's SCHEDULED send time, so queueing is not hidden by coordinated omission).
* Every response is checked off the clock: HTTP 200, MsgSignature valid, decrypts, and
  is a real reply (not "success", not the apology; for the echo bot: equals the text).

Only 127.0.0.1 is contacted. Every loop is bounded in time and count. Subprocesses are
started in their own process groups and stopped in ``finally`` (also on Ctrl-C/SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import csv
import dataclasses
import hashlib
import itertools
import json
import os
import platform
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # run with .venv/bin/python: the same venv's tools
APOLOGY = "系统暂时繁忙"
TOKEN = "benchtoken"
APP_ID = "wxbench0000000001"
TO_USER = "gh_x"
REQUEST_TIMEOUT = 10.0
MODE = "safe"  # or "plain" (--mode): how WeChat posts, and how both servers are configured
ROSTER_HEADER = ["姓名", "手机号", "支部", "入党日期", "角色", "微信OpenID", "企业微信账号"]
BANK_HEADER = [
    "题型",
    "题干",
    "选项A",
    "选项B",
    "选项C",
    "选项D",
    "选项E",
    "选项F",
    "答案",
    "解析",
    "分类",
    "来源",
    "难度",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志"
BRANCHES = 10  # members are spread over this many branches, each with its own paper


# ---------------------------------------------------------------- small helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha1_sorted(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def clean_env() -> dict[str, str]:
    """The environment for BranchBot subprocesses, minus any BRANCHBOT overrides. The
    checkout this file is in comes first on the path, so one venv can measure another
    checkout (e.g. a baseline commit in a detached worktree) with the same dependencies."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHBOT")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def checkout() -> str:
    """The measured code's commit (and whether its tree differs from it)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
        )
        return head.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


class Procs:
    """Subprocesses we started, each in its own process group; stopped by their ids."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, argv: list[str], log: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
        out = open(log, "wb")  # noqa: SIM115 - closed when the process is stopped
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            out.close()
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, grace: float = 8.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # the group whose id is this child's pid
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        else:
            # The leader is gone; make sure nothing it forked is left in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                print(f"warning: could not stop pid {proc.pid}: {exc}", file=sys.stderr)


def run_cli(argv: list[str], cwd: Path, what: str, timeout: float = 300) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 45.0, expect: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | str | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering; log:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                body = resp.read().decode()
                if resp.status == 200 and (expect is None or body == expect):
                    return
                last = f"HTTP {resp.status} {body[:200]!r}"
        except Exception as exc:  # not listening yet
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s (last: {last}); log:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- members and their scripts


@dataclasses.dataclass(frozen=True)
class Person:
    index: int
    name: str
    phone: str
    openid: str
    prebound: bool


def make_people(count: int) -> list[Person]:
    if not 2 <= count <= 10_000:
        raise SystemExit("--members must be between 2 and 10000 (phones are 1390000NNNN)")
    people = []
    for i in range(count):
        name = (
            SURNAMES[i % len(SURNAMES)]
            + GIVEN[(i // len(SURNAMES)) % len(GIVEN)]
            + GIVEN[(i // (len(SURNAMES) * len(GIVEN))) % len(GIVEN)]
        )
        prebound = i % 2 == 0  # interleaved, so every slice of the roster is half bound
        people.append(
            Person(i, name, f"1390000{i:04d}", f"oBench{'B' if prebound else 'U'}{i:06d}{'x' * 14}", prebound)
        )
    return people


# The shape of each branch's paper (kind and option count of every question), so that
# members answer what they are shown: a letter among the options for 单选, two or three
# letters for 多选, 对/错 for 判断. Answers sent blind would mostly earn a format hint,
# a cheaper path than grading, and members would never reach the end of the paper.
PaperShape = list[tuple[str, int]]


def random_answer(kind: str, options: int, rng: random.Random) -> str:
    letters = "ABCDEF"[:options]
    if kind == "判断":
        return rng.choice(["对", "错"])
    if kind == "多选":
        return "".join(sorted(rng.sample(letters, rng.choice([2, 3]) if options > 2 else 2)))
    return rng.choice(letters)


WORKLOADS = ("积分", "mix")  # 积分: bound members asking for their points; mix: whole conversations
POINTS_MEMBERS = 50  # the 积分 workload's bound members (as in issue 14)


def script_for(person: Person, paper: PaperShape, rng: random.Random, workload: str = "mix") -> list[str]:
    """What one member sends, in order, as in real life."""
    if workload == "积分":
        return ["积分"] * 10
    answers = [random_answer(kind, options, rng) for kind, options in paper]
    if person.prebound:
        return ["答题", *answers, "积分", "排行榜"]
    bind = f"绑定 {person.name} {person.phone[-4:]}"
    # first 绑定 binds (DB writes); the second gets "already bound"
    return [bind, "答题", *answers, bind, "积分", "排行榜"]


@dataclasses.dataclass(slots=True)
class Req:
    data: bytes  # the whole HTTP request
    text: str


class RequestFactory:
    """Encrypts and signs messages exactly as WeChat does in safe mode."""

    def __init__(self, aes_key: str, port: int, msgid_start: int) -> None:
        from wechatpy.crypto import WeChatCrypto

        self.crypto = WeChatCrypto(TOKEN, aes_key, APP_ID)
        self.host = f"127.0.0.1:{port}"
        self.msgids = itertools.count(msgid_start)
        self.rng = random.Random()

    def build(self, openid: str, text: str) -> Req:
        ts = str(int(time.time()))
        nonce = str(self.rng.randrange(10**9, 10**10))
        msgid = next(self.msgids)
        plain = (
            f"<xml><ToUserName><![CDATA[{TO_USER}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
            f"<MsgId>{msgid}</MsgId></xml>"
        )
        if MODE == "plain":  # the message as it is, signed with `signature` only
            query = urllib.parse.urlencode(
                {"signature": sha1_sorted(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid}
            )
            body = plain.encode()
            head = (
                f"POST /wechat?{query} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: Mozilla/4.0\r\n"
                f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            return Req(head + body, text)
        envelope = self.crypto.encrypt_message(plain, nonce, ts)
        encrypt = ENCRYPT_RE.search(envelope).group(1)  # type: ignore[union-attr]
        query = urllib.parse.urlencode(
            {
                "signature": sha1_sorted(TOKEN, ts, nonce),
                "timestamp": ts,
                "nonce": nonce,
                "openid": openid,
                "encrypt_type": "aes",
                "msg_signature": sha1_sorted(TOKEN, ts, nonce, encrypt),
            }
        )
        # The body WeChat really posts in safe mode: ToUserName + Encrypt.
        body = f"<xml><ToUserName><![CDATA[{TO_USER}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
        head = (
            f"POST /wechat?{query} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: Mozilla/4.0\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        return Req(head + body, text)


ENCRYPT_RE = re.compile(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", re.S)


class Script(list):
    """One member's pre-built requests, in the order they are sent."""

    person: Person
    fresh: bool


class Roster:
    """Hands out members to phases: fresh ones first; a member whose script was pre-built
    but never started goes back to the fresh pool (its requests are rebuilt later with a
    fresh timestamp). Once all are used, members are recycled in order (they then get
    "already bound" / "already done" replies, still real paths)."""

    def __init__(self, people: list[Person], papers: dict[int, PaperShape], workload: str = "mix") -> None:
        if workload == "积分":  # the same bound members again and again: nothing is fresh
            people = [p for p in people if p.prebound][:POINTS_MEMBERS]
        self.workload = workload
        self.size = len(people)
        self.fresh: collections.deque[Person] = collections.deque(people if workload == "mix" else [])
        self.cycle = itertools.cycle(people)
        self.papers = papers  # by branch number (person.index % BRANCHES)
        self.recycled = 0
        self.rng = random.Random(20240701)

    def take_scripts(self, factory: RequestFactory, messages_wanted: int) -> tuple[collections.deque[Script], int]:
        """Pre-built scripts holding at least ``messages_wanted`` messages."""
        scripts: collections.deque[Script] = collections.deque()
        total = 0
        while total < messages_wanted:
            fresh = bool(self.fresh)
            if fresh:
                person = self.fresh.popleft()
            else:
                person = next(self.cycle)
                self.recycled += self.workload == "mix"
            texts = script_for(person, self.papers[person.index % BRANCHES], self.rng, self.workload)
            script = Script(factory.build(person.openid, t) for t in texts)
            script.person, script.fresh = person, fresh
            scripts.append(script)
            total += len(texts)
        return scripts, total

    def give_back(self, unused: collections.deque[Script]) -> None:
        self.fresh.extendleft(reversed([s.person for s in unused if s.fresh]))


# ---------------------------------------------------------------- the HTTP client


class Conn:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, port: int, stats: PhaseStats) -> None:
        self.port = port
        self.stats = stats
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.stats.connects += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            fresh = self.writer is None
            if fresh:
                await self._connect()
            assert self.reader is not None and self.writer is not None
            self.writer.write(data)
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                self.close()
                partial = getattr(exc, "partial", b"")
                if attempt == 0 and not fresh and not partial:
                    # an idle keep-alive connection the server had closed: resend once
                    self.stats.resends += 1
                    continue
                raise
            status, body, close = await self._rest(head)
            if close:
                self.close()
            return status, body
        raise ConnectionError("unreachable")

    async def _rest(self, head: bytes) -> tuple[int, bytes, bool]:
        assert self.reader is not None
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked = -1, False
        close = lines[0].startswith(b"HTTP/1.0")
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            key = key.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        elif length >= 0:
            body = await self.reader.readexactly(length)
        else:
            body, close = await self.reader.read(), True
        return status, body, close


# ---------------------------------------------------------------- phases


@dataclasses.dataclass
class PhaseStats:
    server: str
    phase: str
    latencies: list[float] = dataclasses.field(default_factory=list)  # seconds
    lags: list[float] = dataclasses.field(default_factory=list)  # open loop: send time - scheduled time
    responses: list[tuple[int, bytes, str]] = dataclasses.field(default_factory=list)
    failures: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    connects: int = 0
    resends: int = 0
    starved: int = 0
    recycled: int = 0  # scripts in this phase sent by members already used (the roster ran out of fresh ones)
    elapsed: float = 0.0
    server_cpu: float = 0.0  # seconds
    other_cpu: float = 0.0  # seconds of CPU used by everything else on the machine
    steal: float = 0.0  # seconds the hypervisor took away
    generator_cpu: float = 0.0
    prebuilt: int = 0
    build_seconds: float = 0.0
    target_rate: float | None = None
    scheduled: int = 0

    def fail(self, what: str) -> None:
        self.failures[what] += 1

    def fail_many(self, what: str, count: int) -> None:
        if count:
            self.failures[what] += count


async def _send(conn: Conn, req: Req, stats: PhaseStats) -> tuple[int, bytes] | None:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            return await conn.request(req.data)
    except TimeoutError:
        stats.fail("timeout")
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        stats.fail(type(exc).__name__)
    conn.close()
    return None


def next_script(scripts: collections.deque[Script], busy: set[str]) -> Script | None:
    """The next script whose member has nothing in flight (one message per member at a time)."""
    for _ in range(min(len(scripts), 64)):
        script = scripts.popleft()
        if script.person.openid not in busy:
            return script
        scripts.append(script)
    return None


async def closed_loop(
    port: int, scripts: collections.deque[Script], concurrency: int, duration: float, stats: PhaseStats
) -> None:
    """``concurrency`` members at a time, each sending its messages back to back."""
    start = time.perf_counter()
    deadline = start + duration
    clock = time.perf_counter
    latencies, responses = stats.latencies, stats.responses
    busy: set[str] = set()

    async def worker() -> None:
        conn = Conn(port, stats)
        try:
            while clock() < deadline:
                script = next_script(scripts, busy)
                if script is None:
                    stats.starved += 1
                    return
                busy.add(script.person.openid)
                try:
                    for req in script:
                        if clock() >= deadline:
                            return
                        sent = clock()
                        result = await _send(conn, req, stats)
                        if result is not None:
                            latencies.append(clock() - sent)
                            responses.append((result[0], result[1], req.text))
                finally:
                    busy.discard(script.person.openid)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.elapsed = time.perf_counter() - start


async def open_loop(
    port: int,
    scripts: collections.deque[Script],
    rate: float,
    duration: float,
    members: int,
    drain: float,
    stats: PhaseStats,
) -> None:
    """Message k is due at start + k/rate and goes to member slot k % members. Latency is
    measured from the due time, so a server that falls behind is charged for the queue.
    Nothing new is sent after start + duration + drain: a message still unsent then is
    an error, and its latency enters the percentiles as (stop - due), a lower bound."""
    slots = int(rate * duration)
    stats.scheduled = slots
    members = max(1, min(members, slots))
    clock = time.perf_counter
    start = clock() + 0.2
    stop = start + duration + drain
    latencies, lags, responses = stats.latencies, stats.lags, stats.responses
    busy: set[str] = set()

    async def worker(first: int) -> None:
        conn = Conn(port, stats)
        queue: collections.deque[Req] = collections.deque()
        member = ""
        try:
            for k in range(first, slots, members):
                due = start + k / rate
                if clock() >= stop:
                    left = range(k, slots, members)
                    stats.fail_many("not sent: server too far behind", len(left))
                    latencies.extend(max(0.0, stop - (start + j / rate)) for j in left)
                    return
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                    lags.append(clock() - due)  # the generator's own lateness (it was idle)
                if not queue:
                    busy.discard(member)
                    script = next_script(scripts, busy)
                    if script is None:
                        stats.starved += 1
                        continue
                    member = script.person.openid
                    busy.add(member)
                    queue.extend(script)
                req = queue.popleft()
                result = await _send(conn, req, stats)
                if result is not None:
                    latencies.append(clock() - due)
                    responses.append((result[0], result[1], req.text))
        finally:
            conn.close()

    await asyncio.gather(*(worker(i) for i in range(members)))
    stats.elapsed = clock() - start


def cpu_seconds(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy CPU seconds, stolen seconds) of the whole machine so far."""
    import psutil

    t = psutil.cpu_times()
    busy = t.user + t.system + getattr(t, "nice", 0) + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
    return busy, getattr(t, "steal", 0.0)


def run_phase(
    kind: str, server: Server, roster: Roster, args: argparse.Namespace, phase: str, duration: float
) -> PhaseStats:
    stats = PhaseStats(server.name, phase)
    factory = server.factory
    t0 = time.perf_counter()
    recycled0 = roster.recycled
    if kind == "closed":
        wanted = int(duration * args.max_rate_guess)
    else:
        wanted = int(args.rate * duration) + min(args.open_members, roster.size) * 16
    scripts, stats.prebuilt = roster.take_scripts(factory, wanted)
    stats.build_seconds = time.perf_counter() - t0
    cpu0, gen0, sys0 = cpu_seconds(server.proc.pid), time.process_time(), machine_cpu()
    if kind == "closed":
        asyncio.run(closed_loop(server.port, scripts, min(args.concurrency, roster.size), duration, stats))
    else:
        stats.target_rate = args.rate
        members = min(args.open_members, roster.size)  # one message in flight per member
        asyncio.run(open_loop(server.port, scripts, args.rate, duration, members, args.drain, stats))
    stats.server_cpu = cpu_seconds(server.proc.pid) - cpu0
    stats.generator_cpu = time.process_time() - gen0
    busy1, steal1 = machine_cpu()
    stats.other_cpu = max(0.0, busy1 - sys0[0] - stats.server_cpu - stats.generator_cpu)
    stats.steal = steal1 - sys0[1]
    built_recycled = roster.recycled - recycled0
    stats.recycled = built_recycled - sum(not sc.fresh for sc in scripts)  # recycled members actually used
    roster.give_back(scripts)
    return stats


# ---------------------------------------------------------------- checking replies (off the clock)


REPLY_FIELDS = re.compile(
    r"<Encrypt><!\[CDATA\[(?P<enc>.*?)\]\]></Encrypt>.*?<MsgSignature><!\[CDATA\[(?P<sig>.*?)\]\]></MsgSignature>"
    r".*?<TimeStamp>(?P<ts>\d+)</TimeStamp>.*?<Nonce><!\[CDATA\[(?P<nonce>.*?)\]\]></Nonce>",
    re.S,
)
CONTENT_RE = re.compile(r"<Content><!\[CDATA\[(.*?)\]\]></Content>", re.S)
CATEGORIES = [  # BranchBot reply kinds, for the "real paths" breakdown
    ("bind_ok", "绑定成功"),
    ("bind_already", "无需重复绑定"),
    ("quiz_finished", "本月测试完成"),
    ("answer_graded", "回答正确"),
    ("answer_graded", "回答错误"),
    ("quiz_start", "测试共"),
    ("quiz_resume", "欢迎回来，继续"),
    ("quiz_done_before", "您已完成"),
    ("answer_format_hint", "请回复"),
    ("answer_format_hint", "这是单选题"),
    ("answer_format_hint", "这是多选题"),
    ("answer_format_hint", "这是判断题"),
    ("answer_format_hint", "本题只有"),
    ("points", "的积分："),
    ("leaderboard", "排行榜"),
    ("unknown_command", "没有找到"),
    ("bind_required", "请先绑定身份"),
]


def check_replies(stats: PhaseStats, aes_key: str, echo: bool) -> collections.Counter:
    from wechatpy.crypto import PrpCrypto, WeChatCrypto

    prp = PrpCrypto(WeChatCrypto(TOKEN, aes_key, APP_ID).key)
    kinds: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}
    for status, body, sent in stats.responses:
        text = body.decode("utf-8", "replace")
        if status != 200:
            stats.fail(f"HTTP {status}")
            examples.setdefault(f"HTTP {status}", text[:160])
            continue
        if text.strip() == "success" or not text.strip():
            stats.fail("empty reply 'success' (BranchBot: deferred past reply_budget_ms)")
            continue
        if MODE == "plain":
            inner = text
        else:
            m = REPLY_FIELDS.search(text)
            if m is None:
                stats.fail("reply not encrypted")
                examples.setdefault("reply not encrypted", text[:160])
                continue
            if sha1_sorted(TOKEN, m["ts"], m["nonce"], m["enc"]) != m["sig"]:
                stats.fail("bad reply MsgSignature")
                continue
            try:
                inner = prp.decrypt(m["enc"], APP_ID)
            except Exception:
                stats.fail("reply does not decrypt")
                continue
        c = CONTENT_RE.search(inner)
        content = c.group(1) if c else ""
        if not content:
            stats.fail("reply without Content")
        elif APOLOGY in content:
            stats.fail("apology (handler error)")
        elif echo:
            if content != sent:
                stats.fail("echo mismatch")
                examples.setdefault("echo mismatch", f"{sent!r} -> {content[:80]!r}")
            else:
                kinds["echo"] += 1
        else:
            kinds[next((k for k, needle in CATEGORIES if needle in content), "other")] += 1
            if not any(needle in content for _, needle in CATEGORIES):
                examples.setdefault("other", content[:120])
    for what, sample in examples.items():
        print(f"  [{stats.server}/{stats.phase}] example of {what}: {sample}")
    return kinds


# ---------------------------------------------------------------- the servers


@dataclasses.dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    factory: RequestFactory
    log: Path


def ensure_bank(tmp: Path, cfg: Path, db_path: Path, needed: int) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        have = db.execute("SELECT count(*) FROM question WHERE active").fetchone()[0]
    if have >= needed:
        return have
    print(f"  bundled bank gave {have} active questions (< {needed}); importing a synthetic bank")
    bank = tmp / "synthetic_bank.csv"
    with open(bank, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(BANK_HEADER)
        for i in range(60):
            cat = ["党史", "党纪", "党章"][i % 3]
            if i % 6 == 5:
                w.writerow(
                    [
                        "判断",
                        f"基准判断题第{i}题：党的基本路线是一个中心两个基本点，这一说法编号{i}正确吗",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "对",
                        f"基准解析{i}",
                        cat,
                        f"基准来源{i}",
                        2,
                    ]
                )
            else:
                w.writerow(
                    [
                        "单选",
                        f"基准单选题第{i}题：以下哪一项是编号{i}的正确选项",
                        "甲",
                        "乙",
                        "丙",
                        "丁",
                        "",
                        "",
                        "ABCD"[i % 4],
                        f"基准解析{i}",
                        cat,
                        f"基准来源{i}",
                        2,
                    ]
                )
    run_cli(
        [str(VENV_BIN / "branchbot"), "quiz", "import", str(bank), "--config", str(cfg)], tmp, "branchbot quiz import"
    )
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return db.execute("SELECT count(*) FROM question WHERE active").fetchone()[0]


def extra_config(with_scheduler: bool) -> str:
    """Sections beyond the brief's config, for what this checkout of BranchBot knows: every
    outbound API base points at a closed local port (a benchmark never talks to anything but
    127.0.0.1), and the scheduler is off unless asked for (its jobs are not webhook work)."""
    try:
        from bot.config import Config
    except Exception:  # an older or broken checkout: the brief's config only
        return ""
    lines = []
    for name, field in Config.model_fields.items():
        model = field.annotation
        fields = getattr(model, "model_fields", {})
        body = []
        if "api_base" in fields and name != "wechat":
            body.append('api_base = "http://127.0.0.1:9"')
        if name == "scheduler" and "enabled" in fields and not with_scheduler:
            body.append("enabled = false")
        if body:
            lines += [f"[{name}]", *body]
    return "\n".join(lines) + "\n" if lines else ""


def write_branchbot_config(cfg: Path, port: int, aes_key: str, questions: int, with_scheduler: bool) -> None:
    """The server's config for the current MODE (rewritten between runs on the same database)."""
    cfg.write_text(
        textwrap.dedent(f"""\
        [database]
        url = "sqlite:///bench.db"
        [server]
        host = "127.0.0.1"
        port = {port}
        [wechat]
        app_id = "{APP_ID}"
        token = "{TOKEN}"
        encoding_aes_key = "{aes_key}"
        mode = "{MODE}"
        replay_window = 300
        api_base = "http://127.0.0.1:9"
        [quiz]
        questions_per_paper = {questions}
        """)
        + extra_config(with_scheduler),
        encoding="utf-8",
    )


def setup_branchbot(
    tmp: Path, aes_key: str, people: list[Person], questions: int, with_scheduler: bool
) -> tuple[Path, int, int, dict[int, PaperShape]]:
    port = free_port()
    cfg = tmp / "config.toml"
    write_branchbot_config(cfg, port, aes_key, questions, with_scheduler)
    roster = tmp / "roster.csv"
    with open(roster, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ROSTER_HEADER)
        for p in people:
            joined = f"{2000 + p.index % 24}-{1 + p.index % 12:02d}-01"
            w.writerow(
                [
                    p.name,
                    p.phone,
                    f"基准第{1 + p.index % BRANCHES}党支部",
                    joined,
                    "党员",
                    p.openid if p.prebound else "",
                    "",
                ]
            )
    bb = str(VENV_BIN / "branchbot")
    run_cli([bb, "init", "--config", str(cfg)], tmp, "branchbot init")
    bank_size = ensure_bank(tmp, cfg, tmp / "bench.db", questions)
    run_cli([bb, "members", "import", str(roster), "--config", str(cfg)], tmp, "branchbot members import")
    with contextlib.closing(sqlite3.connect(tmp / "bench.db")) as db:
        members = db.execute("SELECT count(*) FROM member").fetchone()[0]
    if members != len(people):
        raise RuntimeError(f"roster import loaded {members} members, expected {len(people)}")
    return cfg, port, bank_size, paper_shapes(tmp, cfg)


ENSURE_PAPERS = """
import sys
from bot.config import load_config
from bot.engine import system_clock
from bot.store import Branch, create_store
from quizzes.monthly import ensure_paper
from sqlmodel import select
config = load_config(sys.argv[1])
now = system_clock().astimezone(config.tz)
store = create_store(config.database.url)
with store.session() as db:
    for branch in db.exec(select(Branch)).all():
        ensure_paper(db, branch.id, now.strftime("%Y-%m"), config.quiz.questions_per_paper, config.quiz.categories, now)
"""


def paper_shapes(tmp: Path, cfg: Path) -> dict[int, PaperShape]:
    """Assemble this month's papers the way 答题 does (so the server finds them ready) and
    read each branch's question kinds and option counts."""
    run_cli([str(VENV_BIN / "python"), "-c", ENSURE_PAPERS, str(cfg)], tmp, "assemble papers")
    shapes: dict[int, PaperShape] = {}
    with contextlib.closing(sqlite3.connect(tmp / "bench.db")) as db:
        for name, ids in db.execute("SELECT b.name, p.question_ids FROM paper p JOIN branch b ON b.id = p.branch_id"):
            number = int(re.search(r"第(\d+)党支部", name).group(1))  # type: ignore[union-attr]
            shape = []
            for qid in json.loads(ids):
                kind, options = db.execute("SELECT kind, options FROM question WHERE id = ?", (qid,)).fetchone()
                shape.append((kind, len(json.loads(options))))
            shapes[number - 1] = shape
    if len(shapes) != BRANCHES:
        raise RuntimeError(f"expected {BRANCHES} papers, found {len(shapes)}")
    return shapes


def db_counts(path: Path) -> dict[str, int]:
    """Rows written during the run (proof the real paths ran); tables this checkout lacks are skipped."""
    wanted = ("processedmessage", "answer", "pointsentry", "attempt", "dialog", "bindattempt", "campaign", "delivery")
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in wanted if t in tables}
        counts["bound_members"] = db.execute("SELECT count(*) FROM member WHERE openid IS NOT NULL").fetchone()[0]
    return counts


def start_branchbot(
    procs: Procs, tmp: Path, cfg: Path, port: int, aes_key: str, msgid_start: int, workers: int, serve_cmd: str | None
) -> Server:
    log = tmp / "branchbot.log"
    if serve_cmd:  # an A/B variant, e.g. a patched server
        argv = shlex.split(serve_cmd.format(config=cfg, venv=VENV_BIN, bench=Path(__file__).resolve().parent))
    else:
        argv = [str(VENV_BIN / "branchbot"), "serve", "--config", str(cfg), "--workers", str(workers)]
    proc = procs.start(argv, log, tmp, clean_env())
    wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
    return Server("BranchBot", proc, port, RequestFactory(aes_key, port, msgid_start), log)


ECHO_BOT = '''\
"""Minimal WeRoBot echo bot (safe mode, or plain without an AES key): the benchmark's baseline."""
import os

import werobot

robot = werobot.WeRoBot(token=os.environ["BENCH_TOKEN"], encoding_aes_key=os.environ["BENCH_AES_KEY"] or None,
                        app_id=os.environ["BENCH_APP_ID"])
robot.config["SESSION_STORAGE"] = False  # an echo bot keeps no session


@robot.text
def echo(message):
    return message.content


app = robot.wsgi
'''


def start_echo(procs: Procs, tmp: Path, aes_key: str, args: argparse.Namespace, msgid_start: int) -> Server:
    port = free_port()
    (tmp / "echo_bot.py").write_text(ECHO_BOT, encoding="utf-8")
    env = clean_env() | {
        "BENCH_TOKEN": TOKEN,
        "BENCH_AES_KEY": aes_key if MODE == "safe" else "",
        "BENCH_APP_ID": APP_ID,
    }
    argv = [
        str(VENV_BIN / "gunicorn"),
        "--workers",
        str(args.workers),
        "--worker-class",
        args.echo_worker_class,
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(tmp),
        "--log-level",
        "warning",
        "--keep-alive",
        "5",
    ]
    if args.echo_worker_class == "gthread":
        argv += ["--threads", str(args.echo_threads)]
    argv.append("echo_bot:app")
    log = tmp / "echo.log"
    proc = procs.start(argv, log, tmp, env)
    ts, nonce = str(int(time.time())), "12345"
    query = urllib.parse.urlencode(
        {"signature": sha1_sorted(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "ready"}
    )
    wait_http(f"http://127.0.0.1:{port}/wechat?{query}", proc, log, expect="ready")
    return Server("WeRoBot echo", proc, port, RequestFactory(aes_key, port, msgid_start), log)


# ---------------------------------------------------------------- profiling


def profile_branchbot(server: Server, roster: Roster, args: argparse.Namespace, out: Path) -> PhaseStats | None:
    """An extra closed-loop phase under py-spy (numbers not used for the targets)."""
    spy = VENV_BIN / "py-spy"
    if not spy.exists():
        print("py-spy not installed in the venv (pip install py-spy); skipping the profile")
        return None
    seconds = max(5, int(args.duration))
    cmd = [
        str(spy),
        "record",
        "--pid",
        str(server.proc.pid),
        "--duration",
        str(seconds),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ] + (["--gil"] if args.py_spy_gil else [])
    spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(0.5)
        stats = run_phase("closed", server, roster, args, "closed+py-spy", seconds - 1)
        _, errors = spy_proc.communicate(timeout=seconds + 30)
    finally:
        if spy_proc.poll() is None:
            os.killpg(spy_proc.pid, signal.SIGKILL)
            spy_proc.wait(5)
    if spy_proc.returncode != 0 or not out.exists():
        print(f"py-spy failed ({spy_proc.returncode}): {errors.decode(errors='replace')[-500:]}")
        return stats
    summarise_profile(out)
    return stats


PROJECT_FRAME = re.compile(r"\((bot|handlers|quizzes)/")


def summarise_profile(path: Path, top: int = 18) -> None:
    from rich.console import Console
    from rich.table import Table

    own: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    ours: collections.Counter = collections.Counter()  # innermost BranchBot frame of each sample
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        frames = [re.sub(r" \((/.*?/)?(site-packages/|lib/python3\.\d+/)?", " (", f) for f in frames]
        frames = [f.replace(str(ROOT) + "/", "") for f in frames]
        if not frames:
            continue
        # Idle threads (waiting on locks/selectors) are not CPU: skip stacks ending in a wait.
        leaf = frames[-1]
        if any(w in leaf for w in ("select (selectors", "wait (threading", "_worker (concurrent", "run (anyio")):
            continue
        total += n
        own[leaf] += n
        for f in set(frames):
            incl[f] += n
        mine = [f for f in frames if PROJECT_FRAME.search(f)]
        ours[mine[-1] if mine else "(outside BranchBot code: server loop, HTTP, thread pool)"] += n
    if not total:
        print("py-spy recorded no busy samples")
        return
    console = Console(width=max(140, shutil.get_terminal_size((140, 40)).columns))
    for title, counter in (
        ("py-spy: self time (busy samples)", own),
        ("py-spy: inclusive time", incl),
        ("py-spy: innermost BranchBot function (time below it, incl. SQLAlchemy/SQLite)", ours),
    ):
        t = Table(title=title)
        t.add_column("%", justify="right")
        t.add_column("function (file:line)")
        for frame, n in counter.most_common(top):
            t.add_row(f"{100 * n / total:.1f}", frame)
        console.print(t)
    print(f"collapsed stacks (for flamegraph.pl / speedscope): {path}")


# ---------------------------------------------------------------- report


def summarise(stats: PhaseStats, kinds: collections.Counter) -> dict[str, Any]:
    lat = sorted(stats.latencies)
    ok = sum(kinds.values())
    errors = sum(stats.failures.values())
    result = {
        "server": stats.server,
        "phase": stats.phase,
        "responses": len(stats.responses),
        "ok": ok,
        "errors": errors,
        "failures": dict(stats.failures),
        "elapsed_s": round(stats.elapsed, 3),
        "throughput_msg_s": round(ok / stats.elapsed, 1) if stats.elapsed else 0.0,
        "p50_ms": round(percentile(lat, 50) * 1000, 2) if lat else None,
        "p90_ms": round(percentile(lat, 90) * 1000, 2) if lat else None,
        "p95_ms": round(percentile(lat, 95) * 1000, 2) if lat else None,
        "p99_ms": round(percentile(lat, 99) * 1000, 2) if lat else None,
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "server_cpu_pct": round(100 * stats.server_cpu / stats.elapsed, 1) if stats.elapsed else None,
        "server_cpu_ms_per_msg": round(1000 * stats.server_cpu / ok, 3) if ok else None,
        "generator_cpu_pct": round(100 * stats.generator_cpu / stats.elapsed, 1) if stats.elapsed else None,
        "other_cpu_pct": round(100 * stats.other_cpu / stats.elapsed, 1) if stats.elapsed else None,
        "steal_pct": round(100 * stats.steal / stats.elapsed, 1) if stats.elapsed else None,
        "reply_kinds": dict(kinds.most_common()),
        "connects": stats.connects,
        "resends": stats.resends,
        "prebuilt_requests": stats.prebuilt,
        "prebuild_us_per_request": round(1e6 * stats.build_seconds / stats.prebuilt, 1) if stats.prebuilt else None,
        "ran_out_of_prebuilt": stats.starved,
        "recycled_members": stats.recycled,
    }
    if stats.target_rate is not None:
        lags = sorted(stats.lags)
        result["target_rate_msg_s"] = stats.target_rate
        result["scheduled"] = stats.scheduled
        result["generator_lag_p99_ms"] = round(percentile(lags, 99) * 1000, 2) if lags else None
    return result


def rss_mb(pid: int) -> tuple[float, float]:
    """(RSS of the process and its children, MB; the largest single process, MB)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    sizes = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            sizes.append(p.memory_info().rss / 2**20)
    return sum(sizes), max(sizes, default=0.0)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_report(rows: list[dict[str, Any]], verdict: list[str], console: Any) -> None:
    """One table: each (mode, processes, workload) with the echo bot's and BranchBot's rows."""
    from rich.table import Table

    table = Table(title="/wechat webhook: closed loop (max throughput) and open loop (fixed rate), same run")
    columns = [
        ("mode", "left"),
        ("N", "right"),
        ("workload", "left"),
        ("server", "left"),
        ("closed msg/s", "right"),
        ("× echo", "right"),
        ("p50 / p99 ms", "right"),
        ("CPU ms/msg", "right"),
        ("open: achieved msg/s", "right"),
        ("p50 / p95 / p99 ms", "right"),
        ("errors", "right"),
        ("RSS MB (largest)", "right"),
        ("other CPU", "right"),
    ]
    for col, justify in columns:
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    closed = {(r["mode"], r["workers"], r["workload"], r["server"]): r for r in rows if r["phase"] == "closed"}
    opened = {(r["mode"], r["workers"], r["workload"], r["server"]): r for r in rows if r["phase"] == "open"}
    last_group = None
    for key, c in closed.items():
        mode, workers, workload, server = key
        o = opened.get(key)
        echo = closed.get((mode, workers, workload, "WeRoBot echo"))
        ratio = (
            f"{c['throughput_msg_s'] / echo['throughput_msg_s']:.2f}×"
            if server == "BranchBot" and echo and echo["throughput_msg_s"]
            else ""
        )
        group = (mode, workers, workload)
        if last_group is not None and group != last_group:
            table.add_section()
        last_group = group
        table.add_row(
            mode,
            str(workers),
            workload,
            server,
            f"{c['throughput_msg_s']:,.0f}",
            ratio,
            f"{_ms(c['p50_ms'])} / {_ms(c['p99_ms'])}",
            f"{c['server_cpu_ms_per_msg']:.2f}" if c["server_cpu_ms_per_msg"] else "-",
            f"{o['throughput_msg_s']:,.0f} of {o['target_rate_msg_s']:.0f}" if o else "-",
            f"{_ms(o['p50_ms'])} / {_ms(o['p95_ms'])} / {_ms(o['p99_ms'])}" if o else "-",
            f"{c['errors'] + (o['errors'] if o else 0)}",
            f"{c.get('rss_mb', 0):.0f} ({c.get('rss_largest_mb', 0):.0f})",
            f"{c['other_cpu_pct']}% / {o['other_cpu_pct'] if o else '-'}%",
        )
    console.print(table)
    console.print(
        "N: serving processes of both servers (gunicorn --workers N for the echo bot, branchbot serve --workers N). "
        "CPU ms/msg: CPU time of the server's processes during the closed loop / replies. Open loop: latency from "
        "each message's scheduled send time; achieved = replies / time to the last reply. RSS after the run, all "
        "processes (largest one). 'other CPU': % of one core used by everything else on the machine (closed / open).",
        highlight=False,
    )
    for r in rows:
        if r["failures"] or r["ran_out_of_prebuilt"]:
            console.print(
                f"[yellow]{r['mode']} N={r['workers']} {r['workload']} {r['server']} {r['phase']}: failures "
                f"{r['failures']}, ran out of pre-built requests {r['ran_out_of_prebuilt']}[/yellow]",
                highlight=False,
            )
    console.print()
    for line in verdict:
        colour = "green" if line.startswith("PASS") else "red" if line.startswith("FAIL") else "yellow"
        console.print(f"[{colour}]{line}[/{colour}]", highlight=False)


def judge(rows: list[dict[str, Any]], args: argparse.Namespace, rss: dict[str, Any] | None) -> list[str]:
    """Issue 14's targets, each line PASS / FAIL / INFO (INFO: plain mode, outside the targets)."""

    def row(mode: str, workers: int, workload: str, server: str, phase: str) -> dict[str, Any] | None:
        return next(
            (
                r
                for r in rows
                if (r["mode"], r["workers"], r["workload"], r["server"], r["phase"])
                == (mode, workers, workload, server, phase)
            ),
            None,
        )

    lines: list[str] = []
    for mode in args.modes:
        tag = (lambda ok: "PASS" if ok else "FAIL") if mode == "safe" else (lambda ok: "INFO")
        for workers in args.workers_list:
            for workload in args.workloads:
                bb, echo = (
                    row(mode, workers, workload, "BranchBot", "closed"),
                    row(mode, workers, workload, "WeRoBot echo", "closed"),
                )
                if bb and echo and echo["throughput_msg_s"]:
                    ratio = bb["throughput_msg_s"] / echo["throughput_msg_s"]
                    ok = ratio >= args.target_ratio and bb["errors"] == 0
                    lines.append(
                        f"{tag(ok)}  throughput, {mode}, N={workers}, {workload}: BranchBot {bb['throughput_msg_s']:,.0f}"
                        f" msg/s = {ratio:.2f}× echo {echo['throughput_msg_s']:,.0f} (target ≥ {args.target_ratio}×)"
                    )
                if bb and bb["server_cpu_ms_per_msg"]:
                    ok = bb["server_cpu_ms_per_msg"] <= args.target_cpu_ms
                    lines.append(
                        f"{tag(ok)}  CPU, {mode}, N={workers}, {workload}: {bb['server_cpu_ms_per_msg']:.2f} ms per "
                        f"message, whole request (target ≤ {args.target_cpu_ms} ms)"
                    )
                bb_open = row(mode, workers, workload, "BranchBot", "open")
                if bb_open and bb_open["p99_ms"] is not None and workers == 2:
                    ok = bb_open["p99_ms"] < args.target_p99_ms and bb_open["errors"] == 0
                    lines.append(
                        f"{tag(ok)}  latency, {mode}, N=2, {workload}: p99 {bb_open['p99_ms']:.1f} ms at "
                        f"{args.rate:.0f} msg/s (achieved {bb_open['throughput_msg_s']:,.0f}, errors "
                        f"{bb_open['errors']}; target < {args.target_p99_ms:.0f} ms)"
                    )
    if rss:
        ok = rss["rss_largest_mb"] < 150 and rss["errors"] == 0
        lines.append(
            f"{'PASS' if ok else 'FAIL'}  memory: largest BranchBot process {rss['rss_largest_mb']:.1f} MB (all "
            f"{rss['rss_mb']:.1f} MB) after {rss['messages']:,} messages, {rss['mode']} mode, N={rss['workers']} "
            "(target < 150 MB)"
        )
    else:
        lines.append("SKIP  memory after 100,000 messages (run with --rss-messages 100000)")
    return lines


# ---------------------------------------------------------------- main


def _csv(kind: Any) -> Any:
    def parse(text: str) -> list[Any]:
        return [kind(part.strip()) for part in text.split(",") if part.strip()]

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--duration", type=float, default=6.0, help="closed-loop (max throughput) seconds per run")
    p.add_argument("--concurrency", type=int, default=32, help="closed loop: members in flight at once")
    p.add_argument("--rate", type=float, default=600.0, help="open loop: messages per second")
    p.add_argument("--open-duration", type=float, default=6.0, help="open-loop seconds per run")
    p.add_argument(
        "--open-members",
        type=int,
        default=100,
        help="open loop: members taking turns (each sends every open-members/rate s; at most the workload's members)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=4.0,
        help="open loop: seconds after the schedule ends to keep sending late messages; "
        "what is still unsent then counts as errors",
    )
    p.add_argument("--warmup", type=float, default=2.0, help="closed-loop warm-up seconds per run (discarded)")
    p.add_argument("--members", type=int, default=4000, help="roster size (half pre-bound, half bind during the run)")
    p.add_argument("--questions", type=int, default=10, help="questions per paper ([quiz] questions_per_paper)")
    p.add_argument(
        "--max-rate-guess", type=float, default=4000.0, help="closed loop pre-builds duration × this many requests"
    )
    p.add_argument(
        "--mode",
        "--modes",
        dest="modes",
        type=_csv(str),
        default=["plain", "safe"],
        help="comma-separated: safe (AES + msg_signature), plain (the XML as it is, with signature)",
    )
    p.add_argument(
        "--workers",
        dest="workers_list",
        type=_csv(int),
        default=[1, 2],
        help="comma-separated serving process counts, for BOTH servers (branchbot serve --workers, gunicorn --workers)",
    )
    p.add_argument(
        "--workload",
        "--workloads",
        dest="workloads",
        type=_csv(str),
        default=list(WORKLOADS),
        help=f"comma-separated: 积分 ({POINTS_MEMBERS} bound members asking for their points), mix (members bind, "
        "take the month's quiz, ask for 积分 and 排行榜)",
    )
    p.add_argument("--only", choices=["both", "branchbot", "echo"], default="both")
    p.add_argument(
        "--echo-worker-class",
        choices=["gthread", "sync"],
        default="gthread",
        help="gunicorn worker class for the echo bot (sync has no keep-alive)",
    )
    p.add_argument(
        "--echo-threads", type=int, default=8, help="gthread threads (BranchBot runs handlers on an 8-thread limiter)"
    )
    p.add_argument("--target-ratio", type=float, default=1.5)
    p.add_argument("--target-p99-ms", type=float, default=20.0)
    p.add_argument("--target-cpu-ms", type=float, default=0.5, help="whole request CPU per message, safe mode")
    p.add_argument(
        "--rss-messages",
        type=int,
        default=0,
        metavar="N",
        help="after the matrix, send N mix messages (e.g. 100000) to a fresh BranchBot (safe mode, the largest N of "
        "--workers) and report its RSS",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument(
        "--py-spy",
        type=Path,
        metavar="PATH",
        help="after the measured phases, profile BranchBot under closed-loop load and write collapsed stacks here",
    )
    p.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="sample only the thread holding the GIL (where Python CPU goes; SQLite's own C time is then hidden)",
    )
    p.add_argument(
        "--branchbot-serve",
        metavar="CMD",
        help="serve BranchBot with this command instead of `branchbot serve --config CFG --workers N` (A/B a "
        "patched server; {config}, {venv}, {bench} (this folder) and {workers} are substituted; it runs in the temp "
        "dir and must listen on the config's port)",
    )
    p.add_argument(
        "--with-scheduler",
        action="store_true",
        help="leave BranchBot's background scheduler on (off by default: its jobs are not webhook work)",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (DB, logs) for inspection")
    args = p.parse_args(argv)
    if max(args.duration, args.open_duration) + 30 > 300:
        p.error("phases must fit well inside the 300 s replay window (requests are pre-built before each phase)")
    if args.concurrency < 1 or args.rate <= 0 or args.open_members < 1:
        p.error("--concurrency, --rate and --open-members must be positive")
    if not args.modes or any(m not in ("safe", "plain") for m in args.modes):
        p.error("--mode takes safe, plain or both (comma-separated)")
    if not args.workers_list or any(w < 1 for w in args.workers_list):
        p.error("--workers takes positive counts (comma-separated)")
    if not args.workloads or any(w not in WORKLOADS for w in args.workloads):
        p.error(f"--workload takes {', '.join(WORKLOADS)} (comma-separated)")
    args.mode, args.workers = args.modes[0], args.workers_list[0]  # what single-run callers (memory.py) read
    return args


def measure(
    servers: list[tuple[Server, Roster, bool]], args: argparse.Namespace, aes_key: str, labels: dict[str, Any]
) -> list[dict[str, Any]]:
    """Phases interleaved across servers (warm-up, warm-up, closed, closed, open, open) so that a
    drift in the machine's speed during the run hits both alike."""
    rows = []
    plan = [("closed", "warmup", args.warmup)] if args.warmup > 0 else []
    plan += [("closed", "closed", args.duration), ("open", "open", args.open_duration)]
    for kind, phase, duration in plan:
        for server, roster, echo in servers:
            label = {
                "warmup": "warm-up (discarded)",
                "closed": f"closed loop, {min(args.concurrency, roster.size)} members",
                "open": f"open loop, {args.rate:.0f} msg/s",
            }[phase]
            print(f"  • {server.name}: {label}, {duration:.0f} s", flush=True)
            stats = run_phase(kind, server, roster, args, phase, duration)
            kinds = check_replies(stats, aes_key, echo)
            if phase == "warmup":
                if stats.failures:
                    print(f"  warm-up failures: {dict(stats.failures)}")
            else:
                rows.append(summarise(stats, kinds) | labels)
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} died (exit {server.proc.returncode}); log:\n{tail(server.log)}")
    return rows


def rss_run(
    procs: Procs, tmp: Path, aes_key: str, people: list[Person], args: argparse.Namespace, msgid_base: int
) -> dict[str, Any]:
    """A fresh BranchBot (safe mode, the most processes asked for) given ``--rss-messages`` mix
    messages in closed-loop slices (requests are built per slice, inside the replay window)."""
    global MODE
    MODE = "safe"
    workers = max(args.workers_list)
    rss_dir = tmp / "rss"
    rss_dir.mkdir()
    cfg, port, _, papers = setup_branchbot(rss_dir, aes_key, people, args.questions, args.with_scheduler)
    server = start_branchbot(procs, rss_dir, cfg, port, aes_key, msgid_base, workers, None)
    roster = Roster(people, papers)
    print(f"• memory: {args.rss_messages:,} messages to BranchBot (safe mode, {workers} processes)", flush=True)
    done = errors = 0
    started = time.monotonic()
    while done < args.rss_messages:
        stats = run_phase("closed", server, roster, args, "rss", 20.0)
        kinds = check_replies(stats, aes_key, echo=False)
        done += sum(kinds.values())
        errors += sum(stats.failures.values())
        total, largest = rss_mb(server.proc.pid)
        print(f"  {done:>8,} messages, RSS {total:.1f} MB (largest process {largest:.1f} MB)", flush=True)
        if server.proc.poll() is not None:
            raise RuntimeError(f"BranchBot died; log:\n{tail(server.log)}")
    total, largest = rss_mb(server.proc.pid)
    procs.stop(server.proc)
    return {
        "messages": done,
        "errors": errors,
        "rss_mb": round(total, 1),
        "rss_largest_mb": round(largest, 1),
        "mode": "safe",
        "workers": workers,
        "seconds": round(time.monotonic() - started),
    }


def main(argv: list[str] | None = None) -> int:
    global MODE
    args = parse_args(argv)
    try:
        import psutil  # noqa: F401
        import werobot  # noqa: F401
        from wechatpy.crypto import WeChatCrypto  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"missing bench dependency: {exc.name} (see bench/README.md)") from exc
    if args.only != "branchbot" and not (VENV_BIN / "gunicorn").exists():
        raise SystemExit(f"gunicorn not found in {VENV_BIN} (pip install gunicorn; see bench/README.md)")
    from rich.console import Console

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    console = Console(width=max(200, shutil.get_terminal_size((200, 40)).columns))
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="branchbot-bench-"))
    aes_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    people = make_people(args.members)
    msgid_base = random.randrange(10**17, 9 * 10**17)
    rows: list[dict[str, Any]] = []
    rss: dict[str, Any] | None = None
    started = time.monotonic()
    load_start = os.getloadavg()
    try:
        print(
            f"code {ROOT} at {checkout()}; temp dir {tmp}; {os.cpu_count()} CPUs; python {platform.python_version()}; "
            f"load average {' '.join(f'{x:.2f}' for x in load_start)}"
        )
        papers: dict[int, PaperShape] = {b: [("单选", 4)] * args.questions for b in range(BRANCHES)}
        cfg: Path | None = None
        if args.only in ("both", "branchbot"):
            t0 = time.monotonic()
            MODE = args.modes[0]
            cfg, _, bank, papers = setup_branchbot(tmp, aes_key, people, args.questions, args.with_scheduler)
            print(
                f"• BranchBot set up in {time.monotonic() - t0:.1f} s: {len(people)} members "
                f"({sum(p.prebound for p in people)} pre-bound), {bank} active questions"
            )
        # One roster per workload and server for the whole run: the same database serves every
        # mode and process count, so a member who has bound stays bound, as in real life.
        rosters = {(w, echo): Roster(people, papers, w) for w in args.workloads for echo in (False, True)}
        msgids = itertools.count(msgid_base, 10**13)
        for mode in args.modes:
            MODE = mode
            for workers in args.workers_list:
                args.mode, args.workers = mode, workers
                print(f"• {mode} mode, {workers} process{'es' if workers > 1 else ''}", flush=True)
                running: list[tuple[Server, bool]] = []
                try:
                    if args.only in ("both", "echo"):
                        running.append((start_echo(procs, tmp, aes_key, args, next(msgids)), True))
                    if cfg is not None:
                        port = free_port()
                        write_branchbot_config(cfg, port, aes_key, args.questions, args.with_scheduler)
                        command = (
                            args.branchbot_serve.replace("{workers}", str(workers)) if args.branchbot_serve else None
                        )
                        bb = start_branchbot(procs, tmp, cfg, port, aes_key, next(msgids), workers, command)
                        running.append((bb, False))
                    for workload in args.workloads:
                        print(f"  {workload}:", flush=True)
                        servers = [(server, rosters[(workload, echo)], echo) for server, echo in running]
                        labels = {"mode": mode, "workers": workers, "workload": workload}
                        measured = measure(servers, args, aes_key, labels)
                        for server, _ in running:
                            total, largest = rss_mb(server.proc.pid)
                            for r in measured:
                                if r["server"] == server.name:
                                    r["rss_mb"], r["rss_largest_mb"] = round(total, 1), round(largest, 1)
                        rows += measured
                    bb_running = next((s for s, echo in running if not echo), None)
                    if args.py_spy and bb_running and (mode, workers) == (args.modes[-1], args.workers_list[-1]):
                        prof = profile_branchbot(bb_running, rosters[(args.workloads[-1], False)], args, args.py_spy)
                        if prof is not None:
                            rows.append(summarise(prof, check_replies(prof, aes_key, echo=False)) | labels)
                finally:
                    for server, _ in running:
                        procs.stop(server.proc)
        if cfg is not None:
            print(f"• BranchBot DB after the run: {db_counts(tmp / 'bench.db')}")
        if args.rss_messages and args.only != "echo":
            rss = rss_run(procs, tmp, aes_key, people, args, next(msgids))
    except KeyboardInterrupt:
        print("interrupted; stopping servers", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if args.keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    verdict = judge(rows, args, rss)
    print()
    print_report(rows, verdict, console)
    load_end = os.getloadavg()
    console.print(
        f"\ntotal run time {time.monotonic() - started:.0f} s; load average at the start "
        f"{' '.join(f'{x:.2f}' for x in load_start)}, at the end {' '.join(f'{x:.2f}' for x in load_end)} "
        f"({os.cpu_count()} CPUs, shared: compare servers within a run)",
        highlight=False,
    )
    if args.json:
        import importlib.metadata as md

        def version(name: str) -> str | None:
            try:
                return md.version(name)
            except md.PackageNotFoundError:
                return None

        payload = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "code": checkout(),
            "load_average": {"start": load_start, "end": load_end},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "versions": {
                n: version(n)
                for n in (
                    "branchbot",
                    "uvicorn",
                    "starlette",
                    "werobot",
                    "gunicorn",
                    "wechatpy",
                    "sqlalchemy",
                    "cryptography",
                    "uvloop",
                    "httptools",
                )
            },
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "results": rows,
            "memory": rss,
            "verdict": verdict,
        }
        args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
