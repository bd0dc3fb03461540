"""Assembling a branch's monthly paper: a pure function of the bank and the branch's history."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

MIN_ANSWERS = 30  # answers before the observed correct rate overrides the file's 难度


@dataclass(frozen=True)
class Candidate:
    id: int
    category: str
    difficulty: int = 2


def effective_difficulty(set_difficulty: int, answered: int, correct: int, min_answers: int = MIN_ANSWERS) -> int:
    """The difficulty members have shown rather than the one the author guessed: once a
    question has ``min_answers`` answers, ≥ 80 % right is 1 (易), 50–80 % is 2, < 50 % is 3.
    Before that, the 难度 given in the question file."""
    if answered < min_answers or answered <= 0:
        return set_difficulty if set_difficulty in (1, 2, 3) else 2
    rate = correct / answered
    return 1 if rate >= 0.8 else 2 if rate >= 0.5 else 3


def assemble(candidates: list[Candidate], size: int, categories: list[str], recent: set[int], seed: str) -> list[int]:
    """Pick ``size`` question ids, balanced across categories.

    Within that, the mix of difficulties is kept as even as the pool allows (each pick
    takes, from the category whose turn it is, a question of the difficulty picked least
    so far), so a paper is neither all easy nor all hard. Only ``categories`` are drawn from when given (an empty list means all); "党史" also
    selects its periods such as "党史·新民主主义革命时期". Questions in
    ``recent`` (the branch's last papers) are used only when fresh ones run out. The
    same seed gives the same paper, so a paper can be rebuilt and tested.
    """
    rng = random.Random(seed)
    pool = [c for c in candidates if not categories or in_categories(c.category, categories)]
    fresh = [c for c in pool if c.id not in recent]
    stale = [c for c in pool if c.id in recent]
    levels: Counter[int] = Counter()
    chosen = _round_robin(fresh, size, rng, levels)
    if len(chosen) < size:
        chosen += _round_robin(stale, size - len(chosen), rng, levels)
    rng.shuffle(chosen)
    return chosen


def in_categories(category: str, wanted: list[str]) -> bool:
    return any(category == w or category.startswith(w + "·") for w in wanted)


def _round_robin(candidates: list[Candidate], size: int, rng: random.Random, levels: Counter[int]) -> list[int]:
    by_category: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in sorted(candidates, key=lambda c: c.id):
        by_category[candidate.category].append(candidate)
    queues = []
    for category in sorted(by_category):
        queue = by_category[category]
        rng.shuffle(queue)
        queues.append(queue)
    rng.shuffle(queues)
    picked: list[int] = []
    while len(picked) < size and any(queues):
        for queue in queues:
            if queue and len(picked) < size:
                # the least-used difficulty so far; among equals, the queue's (shuffled) last
                index = min(range(len(queue)), key=lambda i: (levels[queue[i].difficulty], -i))
                candidate = queue.pop(index)
                levels[candidate.difficulty] += 1
                picked.append(candidate.id)
    return picked


def option_order(option_ids: list[str], seed: str, shuffle: bool = True) -> list[str]:
    """A member's fixed order of a question's options (true/false keeps 对 before 错)."""
    order = list(option_ids)
    if shuffle:
        random.Random(seed).shuffle(order)
    return order
