"""Quality lint for question files: what the 2026 audit of the bundled bank found by hand.

A lint finding is not a format error: the question can be imported, but a member could
guess it, a member who saw its twin has in effect seen it, or its 来源 cannot be checked.
``branchbot quiz validate`` fails on findings (``--no-lint`` turns them off); an import
prints them as warnings. A deliberate exception is marked in the question's ``备注``
column as ``lint:ignore=option-length`` (several codes separated by commas).

Pure functions over ``QuestionData``: no I/O, so the console's upload can reuse them.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quizzes.bank import QuestionData

CODES = {
    "answer-in-stem": "正确选项的文字出现在题干中",
    "option-length": "正确选项明显比其他选项长",
    "negated-distractor": "干扰项只是对题干或正确选项的否定",
    "near-duplicate": "与题库中已有题目重复或几乎相同",
    "source-precision": "来源没有写明条款、章节或年份",
    "superseded": "引用了已被修订取代的文件版本",
}
NEAR_DUPLICATE = 90.0  # rapidfuzz ratio on folded stems
LONG_RATIO = 2.0  # the longest option against the others' average
LONG_MARGIN = 8  # ...and at least this many characters longer than the next longest
MAX_TRUE_FALSE_SHARE = 0.25
NEGATIONS = ("不是", "不得", "不能", "不要", "不必", "不会", "不需要", "没有", "无需", "无须", "不", "未", "非", "无")

# 第X条/章/部分…, 总纲, or a year: 1935年条, （2022年10月）, （1921—1949）.
_NUM = "[一二三四五六七八九十百零〇两0-9]+"
_PRECISE = re.compile(rf"第{_NUM}(?:条|章|部分|编|节|卷|项|款|册)|总纲|附则|序言|[0-9]{{4}}\s*年|[（(][0-9]{{4}}")

# (document pattern, current version's year, description). A year written right after the
# document's name (in brackets, as 来源 does) must be the current one; older years name a
# superseded text as if it were in force.
_VERSIONED = [
    (
        re.compile(r"纪律处分条例》?\s*[（(]\s*([0-9]{4})\s*年"),
        2023,
        "《中国共产党纪律处分条例》现行版本为 2023 年修订版",
    ),
    (
        re.compile(r"(?:中国共产党章程|党章)》?\s*[（(]\s*([0-9]{4})\s*年"),
        2022,
        "《中国共产党章程》现行版本为 2022 年 10 月党的二十大修改的版本",
    ),
    (re.compile(r"问责条例》?\s*[（(]\s*([0-9]{4})\s*年"), 2019, "《中国共产党问责条例》现行版本为 2019 年修订版"),
    (
        re.compile(r"巡视工作条例》?\s*[（(]\s*([0-9]{4})\s*年"),
        2024,
        "《中国共产党巡视工作条例》现行版本为 2024 年修订版",
    ),
    (
        re.compile(r"党政领导干部选拔任用工作条例》?\s*[（(]\s*([0-9]{4})\s*年"),
        2019,
        "《党政领导干部选拔任用工作条例》现行版本为 2019 年修订版",
    ),
]
_BEFORE = [  # "2018年修订的《中国共产党纪律处分条例》"
    (re.compile(r"([0-9]{4})\s*年(?:修订|修正|修改)的《中国共产党纪律处分条例》"), 2023, _VERSIONED[0][2]),
]
_IGNORE = re.compile(r"lint\s*:\s*ignore\s*=\s*([a-z\-,，、;；\s]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    row: int
    column: str
    code: str
    message: str

    def text(self) -> str:
        return f"[{self.code}] {self.message}"


def ignored_codes(note: str) -> frozenset[str]:
    """Codes named in a 备注 cell such as ``lint:ignore=option-length,answer-in-stem``."""
    codes: set[str] = set()
    for match in _IGNORE.finditer(unicodedata.normalize("NFKC", note or "")):
        codes.update(c.strip().lower() for c in re.split(r"[,，、;；\s]+", match.group(1)) if c.strip())
    return frozenset(codes)


def unknown_codes(note: str) -> list[str]:
    return sorted(c for c in ignored_codes(note) if c not in CODES)


def fold(text: str) -> str:
    """Text without width, case, spacing or punctuation differences."""
    return re.sub(r"[\s\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def _width(text: str) -> int:
    return len(re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)))


def lint_question(q: QuestionData) -> list[Finding]:
    """Findings about one question on its own."""
    found: list[Finding] = []
    if q.kind in ("单选", "多选") and q.options:
        found += _answer_in_stem(q)
        found += _option_length(q)
        found += _negated_distractor(q)
    found += _source(q)
    return [f for f in found if f.code not in q.ignore]


def _answer_in_stem(q: QuestionData) -> list[Finding]:
    stem = fold(q.stem)
    correct = [o for o in q.options if o["id"] in q.answer]
    wrong = [o for o in q.options if o["id"] not in q.answer]
    if any(len(fold(o["text"])) >= 2 and fold(o["text"]) in stem for o in wrong):
        return []  # a distractor is in the stem too: the stem gives nothing away
    for option in correct:
        folded = fold(option["text"])
        if len(folded) >= 2 and folded in stem:
            return [
                Finding(
                    q.row, "题干", "answer-in-stem", f"正确选项「{option['text']}」的文字出现在题干中，答案可以直接猜出"
                )
            ]
    return []


def _option_length(q: QuestionData) -> list[Finding]:
    if len(q.options) < 3:
        return []
    widths = sorted(((_width(o["text"]), o["text"], o["id"] in q.answer) for o in q.options), reverse=True)
    longest, text, correct = widths[0]
    others = [w for w, _, _ in widths[1:]]
    # A long distractor gives nothing away (a guesser who picks the longest loses).
    if correct and longest >= LONG_RATIO * statistics.mean(others) and longest - others[0] >= LONG_MARGIN:
        return [
            Finding(
                q.row,
                "题干",
                "option-length",
                f"选项「{text[:20]}」（{longest} 字）比其他选项（平均 {statistics.mean(others):.0f} 字）长得多，容易被猜中；请调整选项长度",
            )
        ]
    return []


def _negated_distractor(q: QuestionData) -> list[Finding]:
    stem = fold(q.stem)
    positives = {fold(o["text"]) for o in q.options if o["id"] in q.answer}
    for option in q.options:
        if option["id"] in q.answer:
            continue
        text = unicodedata.normalize("NFKC", option["text"])
        for word in NEGATIONS:
            start = text.find(word)
            while start != -1:
                plain = fold(text[:start] + text[start + len(word) :])
                if len(plain) >= 4 and (plain in positives or plain in stem):
                    return [
                        Finding(
                            q.row,
                            "题干",
                            "negated-distractor",
                            f"干扰项「{option['text']}」只是把题干或正确选项加了否定词，请换成同类的、似是而非的说法",
                        )
                    ]
                start = text.find(word, start + 1)
    return []


def _source(q: QuestionData) -> list[Finding]:
    found = []
    if q.source and not _PRECISE.search(unicodedata.normalize("NFKC", q.source)):
        found.append(
            Finding(
                q.row,
                "来源",
                "source-precision",
                f"来源「{q.source}」没有写明条款、章节或年份（如 第五条、第三部分、2022年、大事记 1935年条）",
            )
        )
    for column, text in (("题干", q.stem), ("来源", q.source)):
        text = unicodedata.normalize("NFKC", text)
        for pattern, current, why in (*_VERSIONED, *_BEFORE):
            for match in pattern.finditer(text):
                if int(match.group(1)) < current:
                    found.append(Finding(q.row, column, "superseded", f"引用了 {match.group(1)} 年的版本：{why}"))
    return found


def near_duplicate_findings(
    questions: Sequence[QuestionData],
    reference: Sequence[QuestionData] = (),
    threshold: float = NEAR_DUPLICATE,
    label: str = "内置题库",
) -> list[Finding]:
    """Questions whose stem equals or nearly equals one in ``reference`` (another file)."""
    from rapidfuzz import fuzz, process

    if not reference:
        return []
    folded_ref = [fold(r.stem) for r in reference]
    found = []
    for q in questions:
        if "near-duplicate" in q.ignore:
            continue
        match = process.extractOne(fold(q.stem), folded_ref, scorer=fuzz.ratio, score_cutoff=threshold)
        if match is not None:
            _, score, index = match
            other = reference[index]
            found.append(
                Finding(
                    q.row,
                    "题干",
                    "near-duplicate",
                    f"与{label}中的题目「{other.stem[:30]}」{'相同' if score >= 100 else f'几乎相同（相似度 {score:.0f}%）'}",
                )
            )
    return found


def lint_questions(questions: Iterable[QuestionData], reference: Sequence[QuestionData] = ()) -> list[Finding]:
    questions = list(questions)
    found = [f for q in questions for f in lint_question(q)]
    found += near_duplicate_findings(questions, reference)
    return sorted(found, key=lambda f: f.row)


def bank_problems(questions: Sequence[QuestionData]) -> list[str]:
    """Checks on the bundled bank as a whole."""
    problems = []
    if questions:
        true_false = sum(1 for q in questions if q.kind == "判断")
        if true_false > MAX_TRUE_FALSE_SHARE * len(questions):
            problems.append(f"判断题 {true_false} 道，占 {true_false / len(questions):.0%}，超过全库的四分之一")
    return problems


def summary(questions: Sequence[QuestionData]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Counts per type, and per category with its types."""
    kinds = Counter(q.kind for q in questions)
    per_category: dict[str, Counter[str]] = {}
    for q in questions:
        per_category.setdefault(q.category, Counter())[q.kind] += 1
    return kinds, per_category
