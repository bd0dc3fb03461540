"""Shared pieces of the CLI: consoles, the operator error, store access."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column, Table

from bot.config import Config
from bot.store import Store, create_store

console = Console()
err = Console(stderr=True, soft_wrap=True)
DEMO_ROSTER = Path(__file__).parent.parent / "demo" / "roster.csv"


class CliError(Exception):
    """An error for the operator; printed without a traceback."""


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console, transient=False) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _store(config: Config, must_exist: bool = True) -> Store:
    from bot.store.db import _sqlite_path

    if must_exist and config.database.url.startswith("sqlite"):
        path = _sqlite_path(config.database.url)
        if path and not Path(path).exists():  # do not create an empty database as a side effect
            raise CliError(f"数据库文件 {path} 不存在：请先运行 branchbot init（或检查 --config 指向的配置文件）")
    store = create_store(config.database.url, lock_timeout=config.database.lock_timeout_seconds)
    if must_exist and not store.is_initialised():
        raise CliError("数据库尚未初始化，请先运行：branchbot init")
    return store


def _now(config: Config) -> datetime:
    return datetime.now(UTC).astimezone(config.tz)


def _print_errors(errors: Sequence[object], path: Path) -> None:
    limit = 50
    for error in errors[:limit]:
        err.print(f"[red]✗[/red] {escape(str(error))}", highlight=False)
    if len(errors) > limit:
        err.print(f"……另有 {len(errors) - limit} 处错误未列出")
    err.print(f"[red]{escape(path.name)} 有 {len(errors)} 处错误，未导入任何内容。请修改后重试。[/red]")


def make_table(*headers: str, title: str | None = None) -> Table:
    """A table that fits the terminal (80 columns included): long cells wrap, never cut."""
    return Table(*(Column(h, overflow="fold") for h in headers), title=title)
