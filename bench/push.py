"""Push fan-out benchmark (run by hand): one campaign to N members through the outbox,
against the fake WeChat API (in its own process) with a fixed latency per call.

Reports messages per second and CPU time per message of the sending process, for the
Official Account path (one customer-service call per member, rate-limited) and the WeCom
path (batches of 1000), beside a baseline in the same run: a bare httpx loop making the
same calls with the same concurrency and no store.

    .venv/bin/python bench/push.py [--members 10000] [--latency 0.02] [--rate 500] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

FAKE = """
import sys, time
from tests.support.fake_wechat_api import FakeWeChatApi
api = FakeWeChatApi(latency=float(sys.argv[1]))
api.__enter__()
print(api.base, flush=True)
sys.stdin.read()
"""


def start_fake(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", FAKE, str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    base = proc.stdout.readline().strip()  # type: ignore[union-attr]
    return proc, base


def stats(base: str) -> dict:
    return httpx.get(f"{base}/stats").json()


def run_outbox(channel: str, members: int, base: str, rate: float, concurrency: int) -> dict:
    from sqlalchemy import insert
    from sqlmodel import select

    from bot.config import load_config
    from bot.outbox.campaigns import create_campaign
    from bot.outbox.worker import OutboxWorker
    from bot.store import Branch, Member, create_store

    workdir = Path(tempfile.mkdtemp(prefix="branchbot-push-"))
    env = {
        "BRANCHBOT__DATABASE__URL": f"sqlite:///{workdir / 'push.db'}",
        "BRANCHBOT__WECHAT__APP_ID": "wxbench",
        "BRANCHBOT__WECHAT__APP_SECRET": "s" * 32,
        "BRANCHBOT__WECHAT__API_BASE": base,
        "BRANCHBOT__WECOM__CORP_ID": "wwbench",
        "BRANCHBOT__WECOM__SECRET": "w" * 32,
        "BRANCHBOT__WECOM__AGENT_ID": "1000002",
        "BRANCHBOT__WECOM__API_BASE": base,
        "BRANCHBOT__OUTBOX__WECHAT_PER_SECOND": str(rate),
        "BRANCHBOT__OUTBOX__WECOM_PER_SECOND": str(rate),
        "BRANCHBOT__OUTBOX__CONCURRENCY": str(concurrency),
        "BRANCHBOT__OUTBOX__POLL_SECONDS": "0.05",
    }
    (workdir / "config.toml").write_text("", encoding="utf-8")
    config = load_config(workdir / "config.toml", env)
    store = create_store(config.database.url)
    store.create_all()
    with store.session() as db:
        branch = Branch(name="基准支部")
        db.add(branch)
        db.flush()
        column = "wecom_userid" if channel == "wecom" else "openid"
        db.execute(
            insert(Member),
            [
                {
                    "name": f"成员{i}",
                    "phone": f"186{i:08d}",
                    "branch_id": branch.id,
                    column: f"{channel}-{i}",
                    "subscribed": True,
                    "role": "党员",
                    "is_demo": False,
                }
                for i in range(members)
            ],
        )
    with store.session() as db:
        ids = list(db.exec(select(Member.id)).all())
        create_campaign(
            db, kind="bench", text="支部通知：本周五下午三点集中学习。", member_ids=ids, now=datetime.now(UTC)
        )
    before = stats(base)
    worker = OutboxWorker(store, config)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    worker.drain(max_seconds=3600)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    worker.stop()
    after = stats(base)
    delivered = sum(n for _, user, n in after["delivered"] if user.startswith(channel)) - sum(
        n for _, user, n in before["delivered"] if user.startswith(channel)
    )
    return {
        "name": f"outbox → {'WeCom (batches of 1000)' if channel == 'wecom' else 'Official Account (客服消息)'}",
        "messages": members,
        "delivered": delivered,
        "wall": wall,
        "cpu": cpu,
        "calls": (
            after["calls"].get("wecom_send" if channel == "wecom" else "custom_send", 0)
            - before["calls"].get("wecom_send" if channel == "wecom" else "custom_send", 0)
        ),
    }


def run_baseline(members: int, base: str, concurrency: int) -> dict:
    """The same customer-service calls from a bare httpx loop: no store, no outbox."""
    client = httpx.Client(base_url=base, limits=httpx.Limits(max_connections=concurrency * 2))
    token = client.post("/cgi-bin/stable_token", json={"appid": "wxbase", "secret": "x"}).json()["access_token"]

    def send(i: int) -> None:
        client.post(
            "/cgi-bin/message/custom/send",
            params={"access_token": token},
            json={"touser": f"base-{i}", "msgtype": "text", "text": {"content": "支部通知：本周五下午三点集中学习。"}},
        ).json()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, range(members)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    client.close()
    return {
        "name": "baseline: bare httpx, same calls",
        "messages": members,
        "delivered": members,
        "wall": wall,
        "cpu": cpu,
        "calls": members,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument(
        "--rate", type=float, default=500, help="configured outbox rate limit (messages or calls per second)"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    console = Console()
    proc, base = start_fake(args.latency)
    try:
        console.print(
            f"fake API {base}, latency {args.latency * 1000:.0f} ms, {args.members} members, "
            f"rate limit {args.rate}/s, concurrency {args.concurrency}"
        )
        results = [
            run_baseline(args.members, base, args.concurrency),
            run_outbox("wechat", args.members, base, args.rate, args.concurrency),
            run_outbox("wecom", args.members, base, args.rate, args.concurrency),
        ]
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.terminate()
        proc.wait(timeout=10)
    table = Table("path", "messages", "delivered", "API calls", "wall s", "msg/s", "CPU ms/msg", title="push fan-out")
    for r in results:
        table.add_row(
            r["name"],
            str(r["messages"]),
            str(r["delivered"]),
            str(r["calls"]),
            f"{r['wall']:.2f}",
            f"{r['messages'] / r['wall']:.0f}",
            f"{r['cpu'] * 1000 / r['messages']:.3f}",
        )
    console.print(table)
    oa = results[1]
    bound = min(args.rate, args.concurrency / args.latency) if args.latency else args.rate
    console.print(
        f"Official Account path: {oa['messages'] / oa['wall']:.0f} msg/s against a ceiling of {bound:.0f} msg/s "
        f"(rate limit {args.rate:.0f}/s, or {args.concurrency} in flight × {args.latency * 1000:.0f} ms); "
        f"CPU {oa['cpu'] * 1000 / oa['messages']:.3f} ms per message "
        f"({'meets' if oa['cpu'] * 1000 / oa['messages'] < 1 else 'misses'} the < 1 ms target)."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
