"""Assembling a branch's monthly paper: a pure function of the bank and the branch's history."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    id: int
    category: str


def assemble(candidates: list[Candidate], size: int, categories: list[str], recent: set[int], seed: str) -> list[int]:
    """Pick ``size`` question ids, balanced across categories.

    Only ``categories`` are drawn from when given (an empty list means all); "党史" also
    selects its periods such as "党史·新民主主义革命时期". Questions in
    ``recent`` (the branch's last papers) are used only when fresh ones run out. The
    same seed gives the same paper, so a paper can be rebuilt and tested.
    """
    rng = random.Random(seed)
    pool = [c for c in candidates if not categories or in_categories(c.category, categories)]
    fresh = [c for c in pool if c.id not in recent]
    stale = [c for c in pool if c.id in recent]
    chosen = _round_robin(fresh, size, rng)
    if len(chosen) < size:
        chosen += _round_robin(stale, size - len(chosen), rng)
    rng.shuffle(chosen)
    return chosen


def in_categories(category: str, wanted: list[str]) -> bool:
    return any(category == w or category.startswith(w + "·") for w in wanted)


def _round_robin(candidates: list[Candidate], size: int, rng: random.Random) -> list[int]:
    by_category: dict[str, list[int]] = defaultdict(list)
    for candidate in sorted(candidates, key=lambda c: c.id):
        by_category[candidate.category].append(candidate.id)
    queues = []
    for category in sorted(by_category):
        ids = by_category[category]
        rng.shuffle(ids)
        queues.append(ids)
    rng.shuffle(queues)
    picked: list[int] = []
    while len(picked) < size and any(queues):
        for queue in queues:
            if queue and len(picked) < size:
                picked.append(queue.pop())
    return picked


def option_order(option_ids: list[str], seed: str, shuffle: bool = True) -> list[str]:
    """A member's fixed order of a question's options (true/false keeps 对 before 错)."""
    order = list(option_ids)
    if shuffle:
        random.Random(seed).shuffle(order)
    return order
