"""Uploaded roster and question files between preview and 确认导入.

The bytes are kept in the store, tied to the session that uploaded them, so the import
that is confirmed is exactly the file that was previewed, whichever process serves the
confirmation. The checkers read files by suffix, so a temporary copy is made for them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from sqlalchemy import delete
from sqlmodel import col, select

from bot.console.web import Page, Refused, small_int
from bot.store.models import ConsoleUpload
from bot.tabular import FileProblem, RowError

SUFFIXES = (".csv", ".xlsx")
KEEP = timedelta(hours=1)


def take_file(page: Page, field: str = "file") -> tuple[str, bytes]:
    if field not in page.files or not page.files[field][1]:
        raise Refused("请选择要上传的文件（CSV 或 XLSX）。", 400)
    name, data = page.files[field]
    if Path(name).suffix.lower() not in SUFFIXES:
        raise Refused(f"「{name}」不是 CSV 或 XLSX 文件。请另存为 .csv 或 .xlsx 后上传。", 400)
    return name, data


def keep(page: Page, kind: str, name: str, data: bytes) -> ConsoleUpload:
    """Store the upload for this session, replacing its earlier uploads of the same kind."""
    owner = page.viewer.session.id_hash
    page.db.execute(
        delete(ConsoleUpload).where(col(ConsoleUpload.session_hash) == owner, col(ConsoleUpload.kind) == kind)
    )
    page.db.execute(delete(ConsoleUpload).where(col(ConsoleUpload.created_at) < page.now - KEEP))
    row = ConsoleUpload(session_hash=owner, kind=kind, filename=name, content=data, created_at=page.now)
    page.db.add(row)
    page.db.flush()
    return row


def kept(page: Page, kind: str) -> ConsoleUpload:
    number = small_int(page.form.get("upload", ""))
    row = None
    if number is not None:
        row = page.db.exec(
            select(ConsoleUpload).where(
                col(ConsoleUpload.id) == number,
                col(ConsoleUpload.kind) == kind,
                col(ConsoleUpload.session_hash) == page.viewer.session.id_hash,
            )
        ).first()
    if row is None or row.created_at < page.now - KEEP:
        raise Refused("找不到待导入的文件（可能已导入或超过 1 小时）。请重新上传。", 400)
    return row


@contextmanager
def as_file(name: str, data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="branchbot-upload-") as folder:
        path = Path(folder) / ("upload" + Path(name).suffix.lower())
        path.write_bytes(data)
        yield path


@dataclass
class Problem:
    """One line of the console's problem table: row, column (with its letter), message."""

    row: int | str
    column: str
    message: str


class _Checked(Protocol):
    @property
    def errors(self) -> Sequence[RowError]: ...


Checked = TypeVar("Checked", bound=_Checked)


def check_upload(name: str, data: bytes, check: Callable[[Path], Checked]) -> tuple[Checked | None, list[Problem]]:
    """An uploaded file through the CLI's checker: (what it found, or None when the file
    cannot be read at all; each problem as the console's table shows it, named as uploaded)."""
    with as_file(name, data) as path:
        try:
            checked = check(path)
        except FileProblem as problem:
            return None, [Problem("", "", str(problem).replace(path.name, name))]
    return checked, [
        Problem(e.row, f"{e.letter} 列「{e.column}」" if e.letter else e.column, e.message) for e in checked.errors
    ]
