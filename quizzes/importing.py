"""The question banks branches already have: Word documents in the usual layouts and
spreadsheets with other headers, read into the same rows the bundled CSVs use.

Entry point: ``parse_question_file(path, source=..., category=...) -> (questions, problems)``.
It only reads the file; importing is ``quizzes.bank.import_questions``. The rule is all
or nothing: any problem refuses the whole file, and each problem names where to look
(the spreadsheet row and column, or the document's question number and line).

Word layouts understood (one question at a time, in any mix):

    一、单选题                         section headings set the type
    1. 题干……（ B ）                   1.  1、  （1）  numbered stems; an answer in the brackets
    A. 选项  B. 选项                   options on one line or several: A.  A、  A．
    答案：B   【答案】B   正确答案：AB   the answer on its own line
    解析：……                          optional; 来源：/分类：/难度： lines too
    三、判断题
    1. 题干……（√）                    判断: √ × 对 错 正确 错误
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.tabular import FileProblem, Table, cell_text, read_table, visible
from quizzes.bank import KINDS, OPTION_HEADERS, Checked, QuestionData, check_table
from quizzes.letters import FALSE_WORDS, LETTERS, TRUE_WORDS

# ------------------------------------------------------------------ spreadsheets

HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "题型": ("题型", "试题类型", "题目类型", "类型", "题类", "题型名称"),
    "题干": ("题干", "题目", "试题内容", "题目内容", "试题", "问题", "试题题干", "题目名称", "内容"),
    "答案": ("答案", "正确答案", "参考答案", "标准答案", "正确选项", "答案选项"),
    "解析": ("解析", "答案解析", "试题解析", "题目解析", "解释"),
    "分类": ("分类", "知识点", "类别", "题目分类", "试题分类", "所属分类"),
    "来源": ("来源", "出处", "依据", "题目来源", "出题依据"),
    "难度": ("难度", "难易程度", "难易度", "难度等级"),
    "备注": ("备注",),
}
for _letter, _header in zip(LETTERS, OPTION_HEADERS):
    HEADER_SYNONYMS[_header] = (_header, _letter, f"{_letter}选项", f"选项{_letter.lower()}", f"{_letter.lower()}")
_CANONICAL = {synonym.upper(): canonical for canonical, synonyms in HEADER_SYNONYMS.items() for synonym in synonyms}
MIXED_KINDS = {"不定项", "不定项选择", "不定项选择题", "选择", "选择题"}  # 单选 or 多选 by the answer


def canonical_header(header: str) -> str:
    return _CANONICAL.get(header.upper(), header)


def canonical_table(table: Table, name: str) -> Table:
    """The table with its headers renamed to the bundled names (题目 → 题干, 参考答案 → 答案,
    A → 选项A …). Column letters stay those of the user's sheet."""
    headers = [canonical_header(h) for h in table.headers]
    renamed = {h: canonical_header(h) for h in table.headers}
    for canonical in HEADER_SYNONYMS:
        used = [table.headers[i] for i, h in enumerate(headers) if h == canonical]
        if len(used) > 1:
            raise FileProblem(f"{name} 第 1 行：表头「{'」「'.join(used)}」都表示「{canonical}」，请只保留一列")
    missing = [h for h in ("题干", "答案") if h not in headers]
    if missing:
        present = "、".join(visible(h) for h in table.headers if h)[:200]
        raise FileProblem(
            f"{name} 第 1 行：缺少表头「{'」「'.join(missing)}」（也认 题目/试题内容、正确答案/参考答案；现有表头：{present or '无'}）"
        )
    rows = [(number, {renamed.get(k, k): v for k, v in row.items()}) for number, row in table.rows]
    return Table(table.file, headers, rows)


def normalize_row(row: dict[str, Any], source: str = "", category: str = "") -> dict[str, Any]:
    """A user's row in the bundled conventions: a type from the answer when the 题型 is
    blank or 不定项, 判断 written as options 正确/错误 with a letter answer, and the
    file-level 来源 and 分类 where a question has none."""
    row = dict(row)
    text = {k: cell_text(v) for k, v in row.items()}
    kind_word = text.get("题型", "").replace(" ", "")
    answer = re_answer(text.get("答案", ""))
    options = [text.get(h, "") for h in OPTION_HEADERS]
    filled = [o for o in options if o]
    if (
        len(filled) == 2
        and {filled[0].upper(), filled[1].upper()} <= TRUE_WORDS | FALSE_WORDS
        and re.fullmatch("[AB]", answer)
        and (not kind_word or KINDS.get(kind_word) == "判断")
    ):
        row["答案"] = filled[LETTERS.index(answer)]
        for h in OPTION_HEADERS:
            row[h] = None
        kind_word = "判断"
    elif not kind_word or kind_word in MIXED_KINDS:
        if filled:
            kind_word = "多选" if len(re.sub(r"[^A-F]", "", answer)) > 1 else "单选"
        elif answer.upper() in TRUE_WORDS | FALSE_WORDS:
            kind_word = "判断"
    row["题型"] = kind_word
    if source and not text.get("来源"):
        row["来源"] = source
    if category and not text.get("分类"):
        row["分类"] = category
    return row


def re_answer(raw: str) -> str:
    return re.sub(r"[\s,，、;；/]+", "", raw.translate(_HALF)).upper()


# ------------------------------------------------------------------ Word documents

_HALF = {**{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}, 0x3000: 0x20}  # 1:1 full-width → ASCII


def _half(text: str) -> str:
    """Full-width letters, digits and punctuation as ASCII, one character for one, so an
    index into the result is an index into the original."""
    return text.translate(_HALF)


_KIND_WORDS = r"单项选择题|单项选择|单选题|多项选择题|多项选择|多选题|不定项选择题|不定项选择|判断题|是非题"
SECTION = re.compile(
    rf"^\s*(?:[一二三四五六七八九十]+\s*[、.]\s*|第[一二三四五六七八九十]+部分\s*)?({_KIND_WORDS})\s*(?:\(.*\)|:.*)?$"
)
STEM = re.compile(r"^\s*(?:(\d{1,4})\s*[.、)](?!\d)|\((\d{1,4})\))\s*(.*)$")
OPTION = re.compile(r"(?<![A-Za-z0-9])([A-F])\s*[.、:)]")  # B, C … must follow in order (see _option_starts)
ANSWER = re.compile(r"^\s*[【\[]?\s*(?:正确答案|参考答案|标准答案|答案)\s*[】\]]?\s*:?\s*(.*)$")
TRAILING_ANSWER = re.compile(r"\s+[【\[]?\s*(?:正确答案|参考答案|标准答案|答案)\s*[】\]]?\s*:?\s*([A-F]{1,6})\s*$")
LABELLED = re.compile(r"^\s*[【\[]?\s*(答案解析|试题解析|解析|来源|出处|分类|知识点|难度)\s*[】\]]?\s*:?\s*(.*)$")
_LABELS = {
    "答案解析": "解析",
    "试题解析": "解析",
    "解析": "解析",
    "来源": "来源",
    "出处": "来源",
    "分类": "分类",
    "知识点": "分类",
    "难度": "难度",
}
BRACKET_ANSWER = re.compile(r"\(\s*([A-F]{1,6}|√|×|✓|✔|✗|✘|对|错|正确|错误)\s*\)")
BLANK = "（　　）"


@dataclass
class DocQuestion:
    number: int  # as printed (or counted, for Word's automatic numbering)
    line: int
    kind: str
    stem: str
    options: list[tuple[str, str, int]] = field(default_factory=list)  # letter, text, line
    answer: str = ""
    answer_line: int = 0
    labelled: dict[str, tuple[str, int]] = field(default_factory=dict)  # 解析/来源/分类/难度
    last: str = "stem"  # the part a continuation line belongs to


@dataclass(frozen=True)
class DocProblem:
    file: str
    question: int | None
    line: int
    message: str

    def __str__(self) -> str:
        where = f"第 {self.question} 题（第 {self.line} 行）" if self.question is not None else f"第 {self.line} 行"
        return f"{self.file} {where}：{visible(self.message)}"


class DocTable:
    """Parsed questions in the shape ``check_table`` reads: rows keyed by the bundled
    headers, and errors that name the question number and the line of the field."""

    def __init__(self, file: str, questions: list[DocQuestion]) -> None:
        self.file = file
        self.by_line = {q.line: q for q in questions}
        self.rows = [(q.line, _row(q)) for q in questions]

    def error(self, row: int, column: str, message: str) -> DocProblem:
        question = self.by_line.get(row)
        if question is None:
            return DocProblem(self.file, None, row, message)
        line = question.line
        if column == "答案" and question.answer_line:
            line = question.answer_line
        elif column in OPTION_HEADERS:
            line = next((ln for letter, _, ln in question.options if f"选项{letter}" == column), line)
        elif column in question.labelled:
            line = question.labelled[column][1]
        return DocProblem(self.file, question.number, line, message)


def _row(q: DocQuestion) -> dict[str, Any]:
    row: dict[str, Any] = {"题型": q.kind, "题干": q.stem, "答案": q.answer}
    for letter, text, _ in q.options:
        row[f"选项{letter}"] = text
    for label, (text, _) in q.labelled.items():
        row[label] = text
    return row


def docx_lines(path: Path) -> list[tuple[str, bool]]:
    """The document's paragraphs as lines (a soft line break starts a new line), each with
    whether Word numbers it automatically (its number is then not in the text)."""
    from docx import Document

    try:
        document = Document(str(path))
    except Exception as exc:  # python-docx raises several unrelated types for bad files
        raise FileProblem(f"{path.name}：无法作为 Word 文档（.docx）打开（{type(exc).__name__}）") from exc
    lines: list[tuple[str, bool]] = []
    for paragraph in document.paragraphs:
        p_pr = paragraph._p.pPr
        numbered = p_pr is not None and p_pr.numPr is not None
        for index, part in enumerate(paragraph.text.replace("\r", "\n").replace("\v", "\n").split("\n")):
            lines.append((part, numbered and index == 0))
    return lines


def parse_lines(name: str, lines: list[tuple[str, bool]]) -> tuple[list[DocQuestion], list[DocProblem]]:
    """Lines of a Word document → questions, or the problems that refuse it."""
    questions: list[DocQuestion] = []
    problems: list[DocProblem] = []
    kind = ""
    current: DocQuestion | None = None
    auto_number = 0
    for line_no, (raw, auto_numbered) in enumerate(lines, start=1):
        original = raw.strip()
        if not original:
            continue
        offset = len(raw) - len(raw.lstrip())
        half = _half(raw)[offset : offset + len(original)]
        if section := SECTION.match(half):
            kind = KINDS.get(section.group(1), "") or "不定项"
            current = None
            continue
        stem = STEM.match(half)
        option_starts = _option_starts(half)
        if stem or (auto_numbered and not option_starts and not ANSWER.match(half) and not LABELLED.match(half)):
            if stem:
                number = int(stem.group(1) or stem.group(2))
                start = stem.start(3)
            else:
                auto_number += 1
                number, start = auto_number, 0
            current = DocQuestion(number, line_no, kind, "")
            questions.append(current)
            _stem_line(current, original[start:], half[start:], line_no)
            continue
        if current is None:
            continue  # a title or instructions before the first question
        if option_starts:
            _option_line(current, original, half, option_starts, line_no)
            continue
        if labelled := LABELLED.match(half):  # before ANSWER: 答案解析 is a 解析
            label = _LABELS[labelled.group(1)]
            current.labelled[label] = (original[labelled.start(2) :].strip(), line_no)
            current.last = label
            continue
        if answer := ANSWER.match(half):
            current.answer, current.answer_line = original[answer.start(1) :].strip(), line_no
            current.last = "answer"
            continue
        if not _continued(current, original):
            problems.append(
                DocProblem(
                    name,
                    current.number,
                    line_no,
                    f"无法识别这一行：「{original[:30]}」（应为选项、答案：、解析： 或下一题）",
                )
            )
    for q in questions:
        _settle(name, q, problems)
    return questions, problems


def _option_line(q: DocQuestion, original: str, half: str, starts: list[tuple[str, int, int]], line_no: int) -> None:
    """A line of options (``A.甲 B.乙``), which may end with the answer (``答案：A``)."""
    text, trailing = original, TRAILING_ANSWER.search(half)
    if trailing:
        q.answer, q.answer_line = trailing.group(1), line_no
        text = original[: trailing.start()]
    for i, (letter, _start, content) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else len(text)
        q.options.append((letter, text[content:end].strip(), line_no))
    q.last = "option"


def _continued(q: DocQuestion, original: str) -> bool:
    """A line that carries on the part before it (the stem, the last option, a labelled
    field); False when the part before it (an answer) does not run over lines."""
    if q.last == "stem":
        q.stem += original
    elif q.last == "option" and q.options:
        letter, text, first_line = q.options[-1]
        q.options[-1] = (letter, text + original, first_line)
    elif q.last in q.labelled:
        text, first_line = q.labelled[q.last]
        q.labelled[q.last] = (text + original, first_line)
    else:
        return False
    return True


INLINE_OPTIONS = re.compile(r"(?<=[\s)。.:，,;？?!])A\s*[.、:]")


def _stem_line(q: DocQuestion, original: str, half: str, line_no: int) -> None:
    """A stem line, which may also carry the options (``……（ ）A.甲 B.乙``) and the answer."""
    if trailing := TRAILING_ANSWER.search(half):
        q.answer, q.answer_line = trailing.group(1), line_no
        original, half = original[: trailing.start()], half[: trailing.start()]
    inline = INLINE_OPTIONS.search(half)
    starts = _option_starts(half[inline.start() :]) if inline else []
    if inline and len(starts) >= 2:
        q.stem = original[: inline.start()].strip()
        rest = original[inline.start() :]
        for i, (letter, _start, content) in enumerate(starts):
            end = starts[i + 1][1] if i + 1 < len(starts) else len(rest)
            q.options.append((letter, rest[content:end].strip(), line_no))
        q.last = "option"
    else:
        q.stem = original.strip()


def _option_starts(half: str) -> list[tuple[str, int, int]]:
    """(letter, start, content start) of options A, B, C … written on this line, in order
    from A or continuing; [] when the line is not a line of options."""
    found: list[tuple[str, int, int]] = []
    for match in OPTION.finditer(half):
        expected = LETTERS[len(found)] if found else None
        if expected is None and match.start() != len(half) - len(half.lstrip()):
            break  # the first option must start the line
        if expected is not None and match.group(1) != expected:
            continue
        found.append((match.group(1), match.start(), match.end()))
    return found


def _settle(name: str, q: DocQuestion, problems: list[DocProblem]) -> None:
    """Take an answer written in the stem's brackets, decide the type, check the shape."""
    half = _half(q.stem)
    brackets = list(BRACKET_ANSWER.finditer(half))
    if brackets:
        last = brackets[-1]
        if not q.answer:
            q.answer, q.answer_line = last.group(1), q.line
        if re_answer(last.group(1)) == re_answer(q.answer) or last.group(1).upper() in TRUE_WORDS | FALSE_WORDS:
            q.stem = (q.stem[: last.start()] + BLANK + q.stem[last.end() :]).strip()
    if not q.answer:
        problems.append(
            DocProblem(
                name, q.number, q.line, "没有找到答案（应写「答案：B」一行，或写在题干括号里，如「（ B ）」「（√）」）"
            )
        )
    if q.kind in ("", "不定项"):
        letters = re.sub(r"[^A-F]", "", re_answer(q.answer))
        if q.options:
            q.kind = "多选" if len(letters) > 1 else "单选"
        elif q.answer.upper() in TRUE_WORDS | FALSE_WORDS:
            q.kind = "判断"
        else:
            q.kind = "单选"  # the validator then reports the missing options
    if q.kind == "判断" and len(q.options) == 2 and {o[1].upper() for o in q.options} <= TRUE_WORDS | FALSE_WORDS:
        letter = re_answer(q.answer)
        if letter in ("A", "B"):
            q.answer = q.options[LETTERS.index(letter)][1]
        q.options = []


# ------------------------------------------------------------------ entry point

SUFFIXES = (".csv", ".xlsx", ".docx")


def parse_question_file(path: str | Path, source: str = "", category: str = "") -> tuple[list[QuestionData], list[Any]]:
    """A branch's question file → (questions that would be imported, problems).

    Any problem means the file must be refused as a whole. ``source`` and ``category``
    fill the 来源 and 分类 of questions that have none. A question without 解析 is
    accepted (see ``check_question_file`` for the warnings). Raises FileProblem when the
    file cannot be read at all (missing, wrong format, no header row)."""
    checked = check_question_file(path, source, category)
    return checked.questions, checked.errors


def check_question_file(path: str | Path, source: str = "", category: str = "") -> Checked:
    """Like ``parse_question_file``, with the warnings and a locator for lint findings."""
    path = Path(path)
    if not path.exists():
        raise FileProblem(f"找不到文件 {path}")
    suffix = path.suffix.lower()
    if suffix == ".docx":
        questions, problems = parse_lines(path.name, docx_lines(path))
        if not questions and not problems:
            raise FileProblem(f"{path.name}：没有找到题目（题目应以 1. 或 1、 或 （1） 开头）")
        for label, given, option in (("来源", source, "--source"), ("分类", category, "--category")):
            if not given and not any(label in q.labelled for q in questions):
                raise FileProblem(
                    f"{path.name}：文档中没有「{label}：」行；整个文件用同一{label}时，请在命令行用 {option} 指定"
                )
        document = DocTable(path.name, questions)
        # A question whose shape is already reported is not validated again.
        refused = {q.line for q in questions for p in problems if p.question == q.number and p.line >= q.line}
        document.rows = [
            (line, normalize_row(row, source, category)) for line, row in document.rows if line not in refused
        ]
        checked = check_table(document, require_explanation=False)
        checked.errors[:0] = problems
        checked.errors.sort(key=lambda p: p.line)
        return checked
    if suffix not in SUFFIXES:
        raise FileProblem(f"{path.name}：只支持 .csv、.xlsx 或 .docx 文件")
    table = canonical_table(read_table(path, []), path.name)
    table.rows = [(number, normalize_row(row, source, category)) for number, row in table.rows]
    for header in ("来源", "分类"):
        if header not in table.headers and not (source if header == "来源" else category):
            option = "--source" if header == "来源" else "--category"
            raise FileProblem(
                f"{path.name} 第 1 行：缺少表头「{header}」；整个文件用同一{header}时，可在命令行用 {option} 指定"
            )
    return check_table(table, require_explanation=False)


def iter_summary(questions: list[QuestionData]) -> Iterator[str]:
    """One line per question, as ``quiz validate FILE`` shows what would be imported."""
    for q in questions:
        key = "".join(LETTERS[int(a[1:]) - 1] if a.startswith("o") else ("对" if a == "t" else "错") for a in q.answer)
        yield f"{q.kind} {q.stem[:40]}{'…' if len(q.stem) > 40 else ''}  答案：{key}"
