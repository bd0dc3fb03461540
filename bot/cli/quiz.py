"""quiz: question bank import and validation."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from bot.audit import cli_actor, record
from bot.cli.common import _now, _print_errors, _store, console, err, progress_bar
from bot.config import Config
from bot.store import Store


def _import_questions(store: Store, path: Path, config: Config) -> int:
    from quizzes.bank import check_file, import_questions

    checked = check_file(path)
    if checked.errors:
        _print_errors(checked.errors, path)
        return 1
    summary = "新增 {0.added} 题，更新 {0.updated} 题，无变化 {0.unchanged} 题"
    with store.session() as db, progress_bar(f"导入题库 {path.name}") as update:
        result = import_questions(db, checked.questions, progress=update)
        record(db, _now(config), cli_actor(), "导入题库", f"{path.name}：{summary.format(result)}")
    console.print(f"题库 {path.name}：{summary.format(result)}。", highlight=False, markup=False)
    return 0


def cmd_quiz_import(args: argparse.Namespace, config: Config) -> int:
    return _import_questions(_store(config), Path(args.file), config)


def cmd_quiz_validate(args: argparse.Namespace, config: Config) -> int:
    from collections import Counter

    from quizzes.bank import check_file

    path = Path(args.file)
    checked = check_file(path)
    if checked.errors:
        for error in checked.errors:
            err.print(f"[red]✗[/red] {escape(str(error))}", highlight=False)
        err.print(f"[red]{escape(path.name)}：{len(checked.errors)} 处错误。[/red]")
        return 1
    kinds = Counter(q.kind for q in checked.questions)
    categories = Counter(q.category for q in checked.questions)
    console.print(escape(f"{path.name}：{len(checked.questions)} 题全部有效（" + "，".join(f"{k} {v}" for k, v in kinds.items()) + "）"))
    for category, count in sorted(categories.items()):
        console.print(f"  {category}：{count} 题", highlight=False, markup=False)
    return 0

