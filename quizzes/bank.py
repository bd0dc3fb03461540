"""The question bank: checking rows, importing them, and the bundled bank.

A question file (CSV or XLSX) has the columns 题型, 题干, 选项A..选项F, 答案, 解析, 分类,
来源, and optionally 难度 (1-3 or 易/中/难) and 备注 (lint checks deliberately excepted).
Every row is checked before anything is stored (``check_table``: each problem with its
row and column, duplicate and near-duplicate stems too); importing is then all or
nothing, an upsert by the stem's identity (``stem_key``). Word documents and
spreadsheets with other headers are read into the same rows by ``quizzes.importing``.
The bundled CSVs under ``bank/`` are imported by ``branchbot init``, which also retires
the stems listed in ``bank/retired.txt``.

Options get stable ids by letter (A → "o1" ... F → "o6"; 判断 uses "t"/"f"), so the
answer key never depends on the order options are shown in.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from bot.imports import Cells, Counts, Located, Progress, check_rows, upsert
from bot.store import Question
from bot.tabular import read_table
from quizzes.letters import FALSE_WORDS, LETTERS, TRUE_WORDS
from quizzes.lint import CODES, ignored_codes, lint_questions, unknown_codes

OPTION_HEADERS = [f"选项{letter}" for letter in LETTERS]
REQUIRED = ["题型", "题干", "答案", "解析", "分类", "来源"]
KINDS = {
    "单选": "单选",
    "单选题": "单选",
    "单项选择": "单选",
    "单项选择题": "单选",
    "多选": "多选",
    "多选题": "多选",
    "多项选择": "多选",
    "多项选择题": "多选",
    "判断": "判断",
    "判断题": "判断",
    "是非题": "判断",
}
DIFFICULTY_WORDS = {
    "易": 1,
    "容易": 1,
    "简单": 1,
    "较易": 1,
    "中": 2,
    "中等": 2,
    "一般": 2,
    "难": 3,
    "较难": 3,
    "困难": 3,
}
TRUE_FALSE_OPTIONS = [{"id": "t", "text": "对"}, {"id": "f", "text": "错"}]
BUNDLED_DIR = Path(__file__).parent / "bank"


def option_id(letter: str) -> str:
    return f"o{LETTERS.index(letter) + 1}"


def stem_key(stem: str) -> str:
    """Identity of a question: its stem without punctuation, spacing or width differences."""
    folded = unicodedata.normalize("NFKC", stem).lower()
    folded = re.sub(r"[\s\W_]+", "", folded)
    return hashlib.sha256(folded.encode()).hexdigest()[:32]


@dataclass
class QuestionData:
    row: int
    kind: str
    stem: str
    options: list[dict[str, str]]
    answer: list[str]
    explanation: str
    category: str
    source: str
    difficulty: int
    ignore: frozenset[str] = frozenset()  # lint codes deliberately excepted (备注 column)

    @property
    def key(self) -> str:
        return stem_key(self.stem)


@dataclass
class Checked:
    """What a file would import. ``errors`` refuse the file; ``warnings`` (a question
    without 解析 from a user's file) and ``lints`` (quality findings) do not by themselves.
    ``locate`` turns (row, column, message) into a located problem for this file."""

    questions: list[QuestionData] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    warnings: list[Any] = field(default_factory=list)
    lints: list[Any] = field(default_factory=list)
    locate: Callable[[int, str, str], Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def add_lint(self, reference: Sequence[QuestionData] = ()) -> None:
        """Run the quality lint (see quizzes.lint), comparing stems with ``reference`` too."""
        assert self.locate is not None
        self.lints = [self.locate(f.row, f.column, f.text()) for f in lint_questions(self.questions, reference)]


def parse_answer_letters(text: str) -> list[str]:
    """'ACD', 'A,C,D', 'a、c d' → ['A', 'C', 'D']; anything else → [] (with the rest kept)."""
    cleaned = re.sub(r"[\s,，、;；/]+", "", unicodedata.normalize("NFKC", text)).upper()
    return list(cleaned)


def check_table(table: Located, require_explanation: bool = True) -> Checked:
    """Validate every row of ``table`` (a ``Table``, or anything with ``rows`` and an
    ``error(row, column, message)`` such as a parsed Word document). The bundled bank
    requires 解析; a branch's own file may leave it out (a warning per question)."""
    result = Checked(locate=table.error)
    seen: dict[str, int] = {}

    def check(cells: Cells) -> QuestionData | None:
        lenient = not require_explanation and not cells.text("解析")
        if lenient:
            result.warnings.append(table.error(cells.number, "解析", "没有解析：可以导入，答题后只显示答案和来源"))
            cells.row = {**cells.row, "解析": ""}
        before = len(result.errors)
        question = _check_row(cells, require_explanation=not lenient)
        if question is None or len(result.errors) > before:
            return None
        if question.key in seen:
            cells.fail("题干", f"与第 {seen[question.key]} 行的题干重复")
            return None
        seen[question.key] = cells.number
        return question

    result.questions = check_rows(table, check, result.errors)
    for later, earlier, score in near_duplicates(result.questions):
        result.errors.append(
            table.error(later.row, "题干", f"与第 {earlier.row} 行的题干几乎相同（相似度 {score:.0f}%），请合并或改写")
        )
    return result


NEAR_DUPLICATE = 90.0  # rapidfuzz ratio on normalised stems


def _folded(stem: str) -> str:
    return re.sub(r"[\s\W_]+", "", unicodedata.normalize("NFKC", stem).lower())


def near_duplicates(
    questions: list[QuestionData], threshold: float = NEAR_DUPLICATE
) -> list[tuple[QuestionData, QuestionData, float]]:
    """Pairs (later, earlier, similarity) whose stems differ only in a word or two: a
    member who has seen one has in effect seen the other."""
    from rapidfuzz import fuzz, process

    found = []
    folded = [_folded(q.stem) for q in questions]
    for index in range(1, len(questions)):
        match = process.extractOne(folded[index], folded[:index], scorer=fuzz.ratio, score_cutoff=threshold)
        if match is None:
            continue
        _, score, earlier = match
        found.append((questions[index], questions[earlier], score))
    return found


def _check_row(cells: Cells, require_explanation: bool = True) -> QuestionData | None:
    """One row → a question, each problem reported through ``cells``; None without a valid 题型."""
    kind = KINDS.get(cells.text("题型").replace(" ", ""))
    if kind is None:
        cells.fail("题型", f"「{cells.text('题型')}」不是有效题型，应为 单选、多选 或 判断")
    stem = _check_texts(cells, require_explanation)
    difficulty = _difficulty(cells)
    options: list[dict[str, str]] = []
    answer: list[str] = []
    if kind == "判断":
        options, answer = _true_false(cells)
    elif kind in ("单选", "多选"):
        options, answer = _choices(cells, kind)
    if unknown := unknown_codes(cells.text("备注")):
        cells.fail("备注", f"未知的检查项「{'、'.join(unknown)}」，可用：{'、'.join(CODES)}")
    if kind is None:
        return None
    return QuestionData(
        cells.number,
        kind,
        stem,
        options,
        answer,
        cells.text("解析"),
        cells.text("分类"),
        cells.text("来源"),
        difficulty,
        ignored_codes(cells.text("备注")),
    )


def _check_texts(cells: Cells, require_explanation: bool) -> str:
    """The stem (present, at most 500 characters) and the columns that may not be empty."""
    stem = cells.text("题干")
    if not stem:
        cells.fail("题干", "题干不能为空")
    elif len(stem) > 500:
        cells.fail("题干", f"题干过长（{len(stem)} 字），请控制在 500 字以内")
    for header in ("解析", "来源", "分类") if require_explanation else ("来源", "分类"):
        if not cells.text(header):
            cells.fail(header, f"{header}不能为空")
    return stem


def _difficulty(cells: Cells) -> int:
    """1-3 (or 易/中/难 and their synonyms); 2 when the cell is empty."""
    raw = cells.text("难度")
    if not raw:
        return 2
    difficulty = DIFFICULTY_WORDS.get(raw, 0) or (int(raw) if raw.isdigit() else 0)
    if difficulty not in (1, 2, 3):
        cells.fail("难度", f"「{raw}」不是有效难度，应为 1、2、3（或 易、中、难）")
    return difficulty


def _true_false(cells: Cells) -> tuple[list[dict[str, str]], list[str]]:
    """A 判断 question: no options of its own, an answer of 对 or 错 (or their synonyms)."""
    filled = [h for h in OPTION_HEADERS if cells.text(h)]
    if filled:
        cells.fail(filled[0], "判断题不需要填写选项，请留空")
    raw_answer = cells.text("答案")
    word = raw_answer.upper()
    answer: list[str] = []
    if word in TRUE_WORDS:
        answer = ["t"]
    elif word in FALSE_WORDS:
        answer = ["f"]
    else:
        cells.fail("答案", f"判断题的答案应为 对 或 错，现为「{raw_answer}」")
    return list(TRUE_FALSE_OPTIONS), answer


def _choices(cells: Cells, kind: str) -> tuple[list[dict[str, str]], list[str]]:
    """A 单选 or 多选 question: options filled from A without gaps, and its answer letters."""
    last_filled = max((i for i, h in enumerate(OPTION_HEADERS) if cells.text(h)), default=-1)
    texts: dict[str, str] = {}
    options: list[dict[str, str]] = []
    for i in range(last_filled + 1):
        header, letter = OPTION_HEADERS[i], LETTERS[i]
        value = cells.text(header)
        if not value:
            cells.fail(header, f"选项{letter}为空，但后面还有选项；选项须从 A 起连续填写")
            continue
        if value in texts.values():
            cells.fail(header, f"选项{letter}与前面的选项内容相同")
        texts[letter] = value
        options.append({"id": option_id(letter), "text": value})
    minimum = 2 if kind == "单选" else 3
    if last_filled + 1 < minimum:
        cells.fail(OPTION_HEADERS[min(last_filled + 1, 5)], f"{kind}题至少需要 {minimum} 个选项")
    return options, _answer_letters(cells, kind, texts, last_filled)


def _answer_letters(cells: Cells, kind: str, texts: dict[str, str], last_filled: int) -> list[str]:
    """The answer of a 单选 or 多选 question as option ids; [] (with an error) if it is not one."""
    raw_answer = cells.text("答案")
    letters = parse_answer_letters(raw_answer)
    if not raw_answer:
        cells.fail("答案", "答案不能为空")
    elif any(ch not in LETTERS for ch in letters):
        cells.fail("答案", f"答案「{raw_answer}」应为选项字母，如 B 或 ACD")
    elif len(set(letters)) != len(letters):
        cells.fail("答案", f"答案「{raw_answer}」中有重复字母")
    elif missing := [ch for ch in letters if ch not in texts]:
        cells.fail("答案", f"答案中的 {''.join(missing)} 没有对应的选项（已填选项 A-{LETTERS[max(last_filled, 0)]}）")
    elif kind == "单选" and len(letters) != 1:
        cells.fail("答案", f"单选题只能有一个答案，现为「{raw_answer}」")
    elif kind == "多选" and len(letters) < 2:
        cells.fail("答案", "多选题至少需要两个正确选项；只有一个正确答案请改为单选题")
    else:
        return [option_id(ch) for ch in sorted(letters)]
    return []


def check_file(path: str | Path) -> Checked:
    """Read and validate a question file; FileProblem if it cannot be read at all."""
    return check_table(read_table(path, REQUIRED))


def import_questions(db: Session, questions: list[QuestionData], progress: Progress | None = None) -> Counts:
    """Upsert by stem: a corrected question keeps its id (and its statistics). A retired
    question stays retired when re-imported."""
    return upsert(
        db,
        questions,
        {q.stem_key: q for q in db.exec(select(Question)).all()},
        key=lambda data: data.key,
        values=lambda data: dict(
            kind=data.kind,
            stem=data.stem,
            options=data.options,
            answer=data.answer,
            explanation=data.explanation,
            category=data.category,
            source=data.source,
            difficulty=data.difficulty,
        ),
        create=lambda data, values: Question(stem_key=data.key, **values),
        progress=progress,
    )


def bundled_files() -> list[Path]:
    return sorted(BUNDLED_DIR.glob("*.csv"))


RETIRED = BUNDLED_DIR / "retired.txt"


def retired_keys() -> set[str]:
    """Stems of bundled questions since rewritten or withdrawn (a wrong fact, a guessable
    form). ``branchbot init`` deactivates them in a database that imported them earlier:
    an upsert by stem cannot know that a new stem replaces an old one."""
    if not RETIRED.exists():
        return set()
    return {stem_key(line) for line in RETIRED.read_text(encoding="utf-8").splitlines() if line.strip()}


def retire_questions(db: Session, keys: set[str]) -> int:
    retired = 0
    for question in db.exec(select(Question).where(Question.active == True)).all():
        if question.stem_key in keys:
            question.active = False
            db.add(question)
            retired += 1
    return retired


@dataclass
class BankReview:
    """The bundled bank checked as a whole: each file, the lint (stems compared across
    files too) and the bank-level rules."""

    files: list[tuple[Path, Checked]]
    problems: list[str]

    @property
    def questions(self) -> list[QuestionData]:
        return [q for _, checked in self.files for q in checked.questions]

    @property
    def ok(self) -> bool:
        return not self.problems and all(c.ok and not c.lints for _, c in self.files)


def review_bundled(lint: bool = True, files: list[Path] | None = None) -> BankReview:
    from quizzes.lint import bank_problems

    review = BankReview([], [])
    earlier: list[QuestionData] = []
    for path in files if files is not None else bundled_files():
        checked = check_file(path)
        if lint and checked.ok:
            checked.add_lint(reference=earlier)
        review.files.append((path, checked))
        earlier += checked.questions
    if lint:
        review.problems = bank_problems(review.questions)
    return review
