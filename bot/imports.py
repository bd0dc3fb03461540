"""The import loop that roster and question files share: check every row → preview → apply.

A file is read into a table (``bot.tabular``; a Word document becomes one too), every
row is checked with each problem located by row and column, and nothing is written
unless every row is valid. Applying is an upsert by a natural key (a phone number, a
question's stem), counted as added / updated / unchanged; the console's preview is that
very upsert run inside a savepoint and rolled back, so it cannot disagree with 确认导入.
What a roster row or a question row must hold stays with its importer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlmodel import Session

from bot.tabular import cell_text

Item = TypeVar("Item")
Row = TypeVar("Row")
Result = TypeVar("Result")
Progress = Callable[[int, int], None]


class Located(Protocol):
    """A table whose problems can be located: a spreadsheet (row and column letter) or
    a parsed Word document (question number and line)."""

    @property
    def rows(self) -> Sequence[tuple[int, dict[str, Any]]]: ...

    def error(self, row: int, header: str, message: str) -> Any: ...


class Cells:
    """One row being checked: its cells as text, and its problems located in the file."""

    def __init__(self, table: Located, number: int, row: dict[str, Any], errors: list[Any]) -> None:
        self.table, self.number, self.row, self.errors = table, number, row, errors

    def value(self, header: str) -> Any:
        return self.row.get(header)

    def text(self, header: str) -> str:
        return cell_text(self.row.get(header))

    def fail(self, header: str, message: str) -> None:
        self.errors.append(self.table.error(self.number, header, message))


def check_rows(table: Located, check: Callable[[Cells], Item | None], errors: list[Any]) -> list[Item]:
    """Each row through ``check``, problems appended to ``errors``: the items of the rows
    that raised none, in file order."""
    items: list[Item] = []
    for number, row in table.rows:
        before = len(errors)
        item = check(Cells(table, number, row, errors))
        if item is not None and len(errors) == before:
            items.append(item)
    return items


@dataclass
class Counts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    def summary(self, unit: str) -> str:
        """「新增 3 人，更新 1 人，无变化 40 人」, as the CLI, the console and the audit log say it."""
        return f"新增 {self.added} {unit}，更新 {self.updated} {unit}，无变化 {self.unchanged} {unit}"


def upsert(
    db: Session,
    items: Sequence[Item],
    existing: dict[str, Row],
    key: Callable[[Item], str],
    values: Callable[[Item], dict[str, Any]],
    create: Callable[[Item, dict[str, Any]], Row],
    progress: Progress | None = None,
    before_update: Callable[[Row], None] | None = None,
) -> Counts:
    """Add what ``existing`` (by key) lacks, update what differs, count what is the same.
    A row added here joins ``existing``; ``before_update`` sees a row before it changes."""
    counts = Counts()
    for index, item in enumerate(items, start=1):
        wanted = values(item)
        current = existing.get(key(item))
        if current is None:
            row = create(item, wanted)
            db.add(row)
            existing[key(item)] = row
            counts.added += 1
        elif any(getattr(current, k) != v for k, v in wanted.items()):
            if before_update is not None:
                before_update(current)
            for name, value in wanted.items():
                setattr(current, name, value)
            db.add(current)
            counts.updated += 1
        else:
            counts.unchanged += 1
        if progress:
            progress(index, len(items))
    return counts


def dry_run(db: Session, apply: Callable[[], Result]) -> Result:
    """What ``apply`` would do, with nothing of it kept: run inside a savepoint, rolled back."""
    savepoint = db.begin_nested()
    try:
        return apply()
    finally:
        savepoint.rollback()
