"""积分 and 排行榜 on a synthetic city-sized database (run by hand): 50,000 members in
300 branches, 6,000,000 answers and the matching points ledger and attempts.

Measures the real chat path (Engine.handle, no HTTP) for a member's 积分 and 排行榜 and
an admin's 排行榜 (本月, 总, 支部), p50/p99 over repeated calls, beside a baseline in the
same run: a primary-key lookup of one member (the cheapest query a reply can make).

The data is written at schema revision 0002 (the ledger and attempts only, as an existing
deployment has them), then the store is upgraded to the code's head, so the run also
times the migrations that backfill any maintained aggregates from that data.

    .venv/bin/python bench/standings.py                       # SQLite in a temp dir
    .venv/bin/python bench/standings.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/standings.py --members 5000 --answers 600000   # a quick run
    .venv/bin/python bench/standings.py --existing --url sqlite:////tmp/.../city.db   # time it again

On PostgreSQL it works in a schema of its own, ``bench_city``, dropped and re-created
each run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import insert, inspect, text  # noqa: E402

from bot.config import load_config  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.messages import Inbound  # noqa: E402
from bot.store import Answer, Attempt, Branch, Member, Paper, PointsEntry, Question, create_store  # noqa: E402
from bot.store.migrate import _alembic, head, upgrade  # noqa: E402
from handlers import build_registry  # noqa: E402

BRANCHES = 300
CHUNK = 20_000


def populate(store, members: int, answers: int, console: Console) -> None:
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    rng = random.Random(7)
    months = ["2025-12"] + [f"2026-{m:02d}" for m in range(1, 12)]  # a year of monthly quizzes
    with store.session() as db:
        db.execute(insert(Branch), [{"name": f"第{i}党支部"} for i in range(1, BRANCHES + 1)])
        db.execute(
            insert(Question),
            [
                {
                    "kind": "单选",
                    "stem": f"题{i}",
                    "stem_key": f"k{i}",
                    "options": [{"id": "o1", "text": "甲"}, {"id": "o2", "text": "乙"}],
                    "answer": ["o1"],
                    "explanation": "解析",
                    "category": "党史",
                    "source": "来源",
                    "difficulty": 2,
                    "active": True,
                }
                for i in range(1, 201)
            ],
        )
    with store.session() as db:
        db.execute(
            insert(Member),
            [
                {
                    "name": f"成员{i}",
                    "phone": f"1{i:010d}",
                    "branch_id": i % BRANCHES + 1,
                    "role": "管理员" if i == 1 else "党员",
                    "openid": f"o{i}",
                    "subscribed": True,
                    "is_demo": False,
                    "status": "在册",
                }
                for i in range(1, members + 1)
            ],
        )
        db.execute(
            insert(Paper),
            [
                {"branch_id": b, "month": m, "question_ids": list(range(1, 11)), "created_at": now}
                for b in range(1, BRANCHES + 1)
                for m in months
            ],
        )
    paper_id = {(b, m): (b - 1) * len(months) + i + 1 for b in range(1, BRANCHES + 1) for i, m in enumerate(months)}
    per_attempt = 10
    attempts = min(answers // per_attempt, members * len(months))  # at most one attempt a member a month
    with Progress(console=console) as progress:
        task = progress.add_task("attempts, answers, points", total=attempts)
        attempt_id = 0
        while attempt_id < attempts:
            rows_a, rows_ans, rows_p = [], [], []
            for _ in range(min(CHUNK // per_attempt, attempts - attempt_id)):
                attempt_id += 1
                member = (attempt_id - 1) % members + 1
                month = months[((attempt_id - 1) // members) % len(months)]
                branch = member % BRANCHES + 1
                correct = rng.randint(3, 10)
                finished = now - timedelta(minutes=rng.randint(0, 40_000))
                rows_a.append(
                    {
                        "id": attempt_id,
                        "member_id": member,
                        "paper_id": paper_id[(branch, month)],
                        "branch_id": branch,
                        "month": month,
                        "option_orders": {},
                        "position": 10,
                        "correct": correct,
                        "score": correct * 10,
                        "started_at": finished,
                        "finished_at": finished,
                    }
                )
                for q in range(1, per_attempt + 1):
                    rows_ans.append(
                        {
                            "attempt_id": attempt_id,
                            "mode": "monthly",
                            "member_id": member,
                            "question_id": q,
                            "chosen": ["o1"],
                            "is_correct": q <= correct,
                            "seconds_taken": 8.0,
                            "answered_at": finished,
                        }
                    )
                rows_p.append(
                    {
                        "member_id": member,
                        "branch_id": branch,
                        "amount": correct * 10,
                        "kind": "earn",
                        "reason": f"monthly:{month}",
                        "month": month,
                        "created_at": finished,
                    }
                )
            with store.session() as db:
                db.execute(insert(Attempt), rows_a)
                db.execute(insert(Answer), rows_ans)
                db.execute(insert(PointsEntry), rows_p)
            progress.update(task, completed=attempt_id)
    if not store.is_sqlite:
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def check_aggregates(store, console: Console) -> None:
    """After the upgrade, the backfilled aggregates (where the schema has them) must agree
    with the ledger and the attempts they summarise."""
    tables = set(inspect(store.engine).get_table_names())
    checks = {
        "membertotal": (
            "SELECT COUNT(*), SUM(points) FROM membertotal",
            "SELECT COUNT(DISTINCT member_id), SUM(amount) FROM pointsentry",
        ),
        "branchmembertotal": (
            "SELECT COUNT(*), SUM(points) FROM branchmembertotal",
            "SELECT COUNT(*), SUM(points) FROM (SELECT branch_id, member_id, SUM(amount) AS points "
            "FROM pointsentry GROUP BY branch_id, member_id) AS t",
        ),
        "branchmonth": (
            "SELECT SUM(finished), SUM(score_sum) FROM branchmonth",
            "SELECT COUNT(*), SUM(score) FROM attempt WHERE finished_at IS NOT NULL",
        ),
    }
    with store.engine.connect() as conn:
        for table, (aggregate, source) in checks.items():
            if table in tables:
                got, want = tuple(conn.execute(text(aggregate)).one()), tuple(conn.execute(text(source)).one())
                if got != want:
                    raise SystemExit(f"{table} disagrees with its source: {got} != {want}")
                console.print(f"{table} agrees with its source: {got}")


def timed(engine: Engine, openid: str, words: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        inbound = Inbound(
            channel="wechat",
            sender=openid,
            kind="text",
            key=str(uuid.uuid4()),
            created_at=datetime.now(UTC),
            text=words,
        )
        started = time.perf_counter()
        engine.handle(inbound)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="database URL (default: SQLite in a temp dir)")
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--answers", type=int, default=6_000_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--existing",
        action="store_true",
        help="time the database a previous run populated (give its --url, and the same --members): "
        "upgrade it to this code's head and time, without re-creating it. For A/B runs on the same data",
    )
    args = parser.parse_args()
    if args.existing and not args.url:
        parser.error("--existing needs the --url of the populated database")
    console = Console()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp(prefix='branchbot-standings-')) / 'city.db'}"
    workdir = Path(tempfile.mkdtemp())
    (workdir / "config.toml").write_text("", encoding="utf-8")
    config = load_config(workdir / "config.toml", {"BRANCHBOT__DATABASE__URL": url})
    store = create_store(config.database.url)
    if not store.is_sqlite:
        if not args.existing:
            with store.engine.begin() as conn:  # a clean schema of its own
                conn.execute(text("DROP SCHEMA IF EXISTS bench_city CASCADE; CREATE SCHEMA bench_city"))
        store = create_store(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3Dbench_city")
    if not args.existing:
        cfg = _alembic(store)
        with store.engine.begin() as conn:  # the schema an existing deployment had before aggregates
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
        started = time.perf_counter()
        populate(store, args.members, args.answers, console)
        console.print(
            f"populated {args.members} members, {args.answers} answers in {time.perf_counter() - started:.0f} s "
            f"({store.engine.dialect.name}: {url})"
        )
    started = time.perf_counter()
    before, _ = upgrade(store)
    if not store.is_sqlite:
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    console.print(f"upgraded {before} -> {head(store)} in {time.perf_counter() - started:.1f} s")
    check_aggregates(store, console)
    engine = Engine(store, config, build_registry(), clock=lambda: datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    member = f"o{args.members // 2}"
    cases = [
        ("baseline: member lookup by primary key", None, None),
        ("积分 (member)", member, "积分"),
        ("排行榜 (member, branch top 10)", member, "排行榜"),
        ("排行榜 总 (member)", member, "排行榜 总"),
        ("排行榜 (admin, all members)", "o1", "排行榜"),
        ("排行榜 总 (admin, all members)", "o1", "排行榜 总"),
        ("排行榜 支部 (admin, 300 branches)", "o1", "排行榜 支部"),
    ]
    table = Table(
        "what",
        "p50 ms",
        "p99 ms",
        "max ms",
        title=f"standings on {args.members} members / {args.answers} answers ({store.engine.dialect.name})",
    )
    for name, openid, words in cases:
        if words is None:
            samples = []
            for _ in range(args.runs):
                t = time.perf_counter()
                with store.session() as db:
                    db.get(Member, args.members // 2)
                samples.append((time.perf_counter() - t) * 1000)
        else:
            timed(engine, openid, words, 3)  # warm caches
            samples = timed(engine, openid, words, args.runs)
        samples.sort()
        table.add_row(
            name,
            f"{statistics.median(samples):.1f}",
            f"{samples[int(len(samples) * 0.99) - 1]:.1f}",
            f"{samples[-1]:.1f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
