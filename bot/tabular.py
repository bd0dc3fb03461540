"""Read operator files (CSV or XLSX, first row headers) into rows keyed by header.

Row numbers are the spreadsheet's (the header is row 1), and every cell keeps its
column letter, so an error can say exactly where to look.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl.utils import get_column_letter


class FileProblem(Exception):
    """The file as a whole cannot be read (missing, wrong format, missing headers)."""


# Control, format (RTL marks, zero-width, BOM), surrogate, private-use, unassigned and
# line/paragraph separators: nothing a name or a message should carry unseen.
INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def invisible(ch: str) -> bool:
    return unicodedata.category(ch) in INVISIBLE


def visible(text: str) -> str:
    """Invisible characters spelled out as <U+XXXX>, so a message stays on one line and
    shows what is really in the cell."""
    return "".join(f"<U+{ord(c):04X}>" if invisible(c) else c for c in text)


def shown(value: Any, limit: int = 30) -> str:
    """A cell as quoted back in an error: visible and bounded."""
    text = cell_text(value)
    if len(text) > limit:
        return f"{visible(text[:limit])}…（共 {len(text)} 字）"
    return visible(text)


@dataclass(frozen=True)
class RowError:
    file: str
    row: int
    column: str  # header name
    letter: str  # spreadsheet column letter, "" when the column is missing
    message: str

    def __str__(self) -> str:
        where = f"{self.letter} 列「{self.column}」" if self.letter else f"「{self.column}」列"
        return f"{self.file} 第 {self.row} 行 {where}：{visible(self.message)}"


@dataclass
class Table:
    file: str
    headers: list[str]
    rows: list[tuple[int, dict[str, Any]]]

    def letter(self, header: str) -> str:
        return get_column_letter(self.headers.index(header) + 1) if header in self.headers else ""

    def error(self, row: int, header: str, message: str) -> RowError:
        return RowError(self.file, row, header, self.letter(header), message)


def clean_header(value: Any) -> str:
    """'答案（必填）', ' 答案 ' and '答案(必填)' all mean 答案, and so does 答案 after a stray
    BOM or zero-width character (U+FEFF, U+200B), which an error could not show."""
    text = unicodedata.normalize("NFKC", str(value or ""))
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").strip()
    return re.sub(r"\(.*?\)", "", text).replace(" ", "")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def read_table(path: str | Path, required: list[str], optional: Sequence[str] = ()) -> Table:
    """Rows keyed by header. A required or optional header given twice is refused: which
    column would count is a guess, and an error could name the wrong one."""
    path = Path(path)
    if not path.exists():
        raise FileProblem(f"找不到文件 {path}")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        grid = _read_xlsx(path)
    elif suffix == ".csv":
        grid = _read_csv(path)
    else:
        raise FileProblem(f"{path.name}：只支持 .csv 或 .xlsx 文件")
    if not grid:
        raise FileProblem(f"{path.name}：文件是空的，第 1 行应为表头")
    headers = [clean_header(h) for h in grid[0]]
    missing = [h for h in required if h not in headers]
    if missing:
        present = [shown(h, 20) for h in headers if h]
        listed = "、".join(present[:20]) + (f" 等 {len(present)} 个" if len(present) > 20 else "")
        raise FileProblem(f"{path.name} 第 1 行：缺少表头「{'」「'.join(missing)}」（现有表头：{listed or '无'}）")
    twice = [h for h, n in Counter(headers).items() if n > 1 and h in (*required, *optional)]
    if twice:
        letters = "、".join(get_column_letter(i + 1) for i, h in enumerate(headers) if h == twice[0])
        raise FileProblem(f"{path.name} 第 1 行：表头「{twice[0]}」出现了多次（{letters} 列），请只保留一列")
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, values in enumerate(grid[1:], start=2):
        if all(cell_text(v) == "" for v in values):
            continue
        row = {h: (values[i] if i < len(values) else None) for i, h in enumerate(headers) if h}
        rows.append((number, row))
    return Table(path.name, headers, rows)


def _read_csv(path: Path) -> list[list[Any]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise FileProblem(f"{path.name}：无法识别文件编码，请另存为 UTF-8 编码的 CSV")
    if "\x00" in text:
        raise FileProblem(f"{path.name}：看起来不是文本 CSV 文件")
    try:
        return [row for row in csv.reader(io.StringIO(text))]
    except csv.Error as exc:
        reason = "单元格内容过长" if "field larger than field limit" in str(exc) else str(exc)
        raise FileProblem(f"{path.name}：CSV 格式有误（{reason}）") from exc


def _read_xlsx(path: Path) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for bad files
        raise FileProblem(f"{path.name}：无法作为 Excel 工作簿打开（{type(exc).__name__}）") from exc
    try:
        sheet = workbook.worksheets[0]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    except Exception as exc:  # read-only mode parses the sheet only now: bad XML (e.g. U+FFFE) shows here
        raise FileProblem(f"{path.name}：工作表内容已损坏，无法读取（{type(exc).__name__}）") from exc
    finally:
        workbook.close()
