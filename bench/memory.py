#!/usr/bin/env python3
"""Resident memory of a serving process across 100,000 webhook messages (run by hand).

    .venv/bin/python bench/memory.py                      # 100,000 messages each, about 10 minutes
    .venv/bin/python bench/memory.py --messages 20000     # a quick look

It reuses bench/webhook.py's set-up, load generator and reply checks: `branchbot serve`
(one process) on a fresh SQLite database with a 10,000-member roster, in safe mode,
getting real conversations (binding, 答题 and answers, 积分, 排行榜) from 32 members at a
time; beside it, in the same run, the WeRoBot echo bot on gunicorn getting the same
number of messages. It samples each server's resident set size (RSS, the process and its
children) after the warm-up and after every closed-loop slice, and reports the growth
over the second half of the run, when caches and pools have long been warm: a leak shows
there as MB per 10,000 messages.

Targets (issue 6): RSS < 150 MB after 100,000 messages, and not growing.
"""

from __future__ import annotations

import argparse
import random
import secrets
import string
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import webhook as wb


def rss_mb(pid: int) -> float:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def drive(
    server: wb.Server, roster: wb.Roster, args: argparse.Namespace, messages: int, aes_key: str, echo: bool
) -> list[tuple[int, float]]:
    """Closed-loop slices until ``messages`` real replies; (messages so far, RSS MB) after each."""
    run_args = wb.parse_args(["--concurrency", str(args.concurrency)])
    wb.run_phase("closed", server, roster, run_args, "warmup", 3.0)
    samples = [(0, rss_mb(server.proc.pid))]
    done = 0
    while done < messages:
        stats = wb.run_phase("closed", server, roster, run_args, "closed", args.slice)
        kinds = wb.check_replies(stats, aes_key, echo)
        bad = sum(stats.failures.values())
        if bad:
            raise SystemExit(f"{server.name}: {bad} bad replies: {dict(stats.failures)}")
        done += sum(kinds.values())
        samples.append((done, rss_mb(server.proc.pid)))
        print(
            f"  {server.name}: {done:>7} messages, RSS {samples[-1][1]:6.1f} MB "
            f"({sum(kinds.values()) / stats.elapsed:.0f} msg/s)",
            flush=True,
        )
        if server.proc.poll() is not None:
            raise SystemExit(f"{server.name} died; log:\n{wb.tail(server.log)}")
    return samples


def growth_per_10k(samples: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS over the second half of the run, in MB per 10,000 messages."""
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    if len(half) < 2:
        return 0.0
    n = len(half)
    mx = sum(m for m, _ in half) / n
    my = sum(r for _, r in half) / n
    var = sum((m - mx) ** 2 for m, _ in half)
    return 0.0 if var == 0 else sum((m - mx) * (r - my) for m, r in half) / var * 10_000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=100_000, help="messages per server")
    p.add_argument("--members", type=int, default=10_000, help="roster size (at most 10,000)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--slice", type=float, default=20.0, help="seconds between RSS samples")
    p.add_argument("--no-echo", action="store_true", help="skip the echo bot baseline")
    args = p.parse_args()

    procs = wb.Procs()
    tmp = Path(tempfile.mkdtemp(prefix="branchbot-memory-"))
    aes_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    people = wb.make_people(args.members)
    msgid_base = random.randrange(10**17, 9 * 10**17)
    results: dict[str, list[tuple[int, float]]] = {}
    try:
        cfg, port, _, papers = wb.setup_branchbot(tmp, aes_key, people, 10, False)
        bb = wb.start_branchbot(procs, tmp, cfg, port, aes_key, msgid_base, 1, None)
        print(f"• BranchBot (branchbot serve, 1 process), {len(people)} members, temp dir {tmp}")
        results["BranchBot"] = drive(bb, wb.Roster(people, papers), args, args.messages, aes_key, echo=False)
        procs.stop(bb.proc)
        if not args.no_echo:
            echo_args = wb.parse_args([])
            echo = wb.start_echo(procs, tmp, aes_key, echo_args, msgid_base + 5 * 10**16)
            print("• WeRoBot echo (gunicorn, 1 worker, 8 threads)")
            results["WeRoBot echo"] = drive(echo, wb.Roster(people, papers), args, args.messages, aes_key, echo=True)
    finally:
        procs.stop_all()

    print()
    print(
        f"{'server':<14} {'messages':>9} {'RSS after warm-up':>18} {'RSS at end':>11} {'peak':>7} {'growth, 2nd half':>22}"
    )
    for name, samples in results.items():
        peak = max(r for _, r in samples)
        print(
            f"{name:<14} {samples[-1][0]:>9} {samples[0][1]:>15.1f} MB {samples[-1][1]:>8.1f} MB {peak:>5.1f} MB"
            f" {growth_per_10k(samples):>+12.2f} MB/10k msgs"
        )
    bb_samples = results.get("BranchBot")
    if bb_samples:
        end, slope = bb_samples[-1][1], growth_per_10k(bb_samples)
        print(
            f"{'PASS' if end < 150 else 'FAIL'}  RSS {end:.1f} MB after {bb_samples[-1][0]} messages (target < 150 MB)"
        )
        print(
            f"{'PASS' if slope < 0.5 else 'FAIL'}  growth {slope:+.2f} MB per 10,000 messages over the second half "
            "(target: not growing; < 0.5 MB/10k)"
        )
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main()
    print(f"total run time {time.monotonic() - t0:.0f} s")
    sys.exit(code)
