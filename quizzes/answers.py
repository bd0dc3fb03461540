"""Reading a member's answer from chat, and grading it.

A member may write 'A', 'ab', 'ＡＣ', 'A C', 'A、C', '对', '错'. The letters refer to
the order the options were shown in, which differs per member; grading compares
option ids, never letters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from quizzes.letters import FALSE_WORDS, LETTERS, TRUE_WORDS

_SEPARATORS = re.compile(r"[\s,，、;；/.。和与]+")


@dataclass(frozen=True)
class Parsed:
    letters: tuple[str, ...] = ()
    problem: str = ""  # a hint for the member when the text is an answer attempt gone wrong


def looks_like_answer(text: str) -> bool:
    """True when the text is made only of option letters or a true/false word."""
    folded = _fold(text)
    return bool(folded) and (folded in TRUE_WORDS | FALSE_WORDS or all(ch in LETTERS for ch in folded))


def parse(text: str, kind: str, option_count: int) -> Parsed:
    folded = _fold(text)
    valid = LETTERS[:option_count]
    if kind == "判断":
        if folded in TRUE_WORDS or folded == "A":
            return Parsed(("A",))
        if folded in FALSE_WORDS or folded == "B":
            return Parsed(("B",))
        return Parsed(problem="这是判断题，请回复「对」或「错」。")
    if folded in TRUE_WORDS | FALSE_WORDS:
        return Parsed(problem=f"这是{kind}题，请回复选项字母（A-{valid[-1]}）。")
    letters = tuple(sorted(set(folded)))
    if any(ch not in valid for ch in letters):
        return Parsed(problem=f"本题只有 A-{valid[-1]} 这 {option_count} 个选项，请重新回复。")
    if kind == "单选" and len(letters) != 1:
        return Parsed(problem="这是单选题，请只回复一个字母。")
    if kind == "多选" and len(letters) < 2:
        return Parsed(problem="这是多选题，至少有两个正确选项，请把选中的字母一起回复，如「AC」。")
    return Parsed(letters)


def is_correct(chosen_ids: list[str], answer_ids: list[str]) -> bool:
    """All or nothing: a multiple-choice answer counts only when exactly right."""
    return sorted(chosen_ids) == sorted(answer_ids)


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text or "").strip().upper()
    return _SEPARATORS.sub("", folded)
