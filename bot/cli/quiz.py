"""quiz: question bank import and validation."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from bot.audit import cli_actor, record
from bot.cli.common import _now, _print_errors, _store, console, err, progress_bar
from bot.cli.parsing import ChineseArgumentParser, Commands
from bot.config import Config
from bot.store import Store

if TYPE_CHECKING:  # the quiz modules load only when a quiz command runs
    from quizzes.bank import Checked, QuestionData


def _check_question_file(path: Path, source: str = "", category: str = "") -> Checked:
    """The bundled bank's own files strictly (解析 required); a branch's file leniently,
    in any of the layouts quizzes.importing reads."""
    from quizzes.bank import BUNDLED_DIR, check_file
    from quizzes.importing import check_question_file

    if path.resolve().parent == BUNDLED_DIR.resolve() and not (source or category):
        return check_file(path)
    return check_question_file(path, source, category)


def _import_questions(store: Store, path: Path, config: Config, source: str = "", category: str = "") -> int:
    from quizzes.bank import import_questions

    checked = _check_question_file(path, source, category)
    if checked.errors:
        _print_errors(checked.errors, path)
        return 1
    for warning in checked.warnings[:20]:
        err.print(f"[yellow]![/yellow] {escape(str(warning))}", highlight=False)
    if len(checked.warnings) > 20:
        err.print(f"……另有 {len(checked.warnings) - 20} 条提示未列出")
    with store.session() as db, progress_bar(f"导入题库 {path.name}") as update:
        result = import_questions(db, checked.questions, progress=update)
        record(db, _now(config), cli_actor(), "导入题库", f"{path.name}：{result.summary('题')}")
    console.print(f"题库 {path.name}：{result.summary('题')}。", highlight=False, markup=False)
    return 0


def cmd_quiz_import(args: argparse.Namespace, config: Config) -> int:
    return _import_questions(_store(config), Path(args.file), config, args.source or "", args.category or "")


def _print_summary(questions: Sequence[QuestionData]) -> None:
    from quizzes.lint import summary

    kinds, per_category = summary(questions)

    def types(counter: Counter[str]) -> str:
        return "，".join(f"{kind} {counter[kind]}" for kind in ("单选", "多选", "判断") if counter[kind])

    console.print(
        f"共 {len(questions)} 题（{types(kinds)}），{len(per_category)} 个分类：", highlight=False, markup=False
    )
    for category, counter in sorted(per_category.items(), key=lambda item: (-sum(item[1].values()), item[0])):
        console.print(f"  {category}：{sum(counter.values())} 题（{types(counter)}）", highlight=False, markup=False)


def _print_lints(lints: Sequence[object]) -> None:
    for finding in lints:
        err.print(f"[yellow]![/yellow] {escape(str(finding))}", highlight=False)


def cmd_quiz_validate(args: argparse.Namespace, config: Config) -> int:
    from quizzes.bank import bundled_files, check_file, review_bundled

    lint = not args.no_lint
    if args.file is None:
        review = review_bundled(lint=lint)
        failed = False
        for path, checked in review.files:
            for problem in (*checked.errors, *checked.lints):
                err.print(f"[red]✗[/red] {escape(str(problem))}", highlight=False)
            failed = failed or bool(checked.errors or checked.lints)
            console.print(f"{path.name}：{len(checked.questions)} 题", highlight=False, markup=False)
        for problem in review.problems:
            err.print(f"[red]✗[/red] 内置题库：{escape(problem)}", highlight=False)
        _print_summary(review.questions)
        if failed or review.problems:
            lints = sum(len(c.lints) for _, c in review.files)
            errors = sum(len(c.errors) for _, c in review.files)
            err.print(f"[red]内置题库：{errors} 处错误，{lints} 处质量问题，{len(review.problems)} 项全库问题。[/red]")
            return 1
        console.print(
            "内置题库检查通过" + ("（含质量检查）" if lint else "（未做质量检查）") + "。",
            highlight=False,
            markup=False,
        )
        return 0
    from quizzes.importing import iter_summary

    path = Path(args.file)
    checked = _check_question_file(path, args.source or "", args.category or "")
    if checked.errors:
        for error in checked.errors:
            err.print(f"[red]✗[/red] {escape(str(error))}", highlight=False)
        err.print(f"[red]{escape(path.name)}：{len(checked.errors)} 处错误，整个文件不会导入。[/red]")
        return 1
    if lint:
        same = path.resolve()
        reference = [q for p in bundled_files() if p.resolve() != same for q in check_file(p).questions]
        checked.add_lint(reference)
    for warning in checked.warnings:
        err.print(f"[yellow]![/yellow] {escape(str(warning))}", highlight=False)
    _print_lints(checked.lints)
    if path.suffix.lower() == ".docx" or args.verbose:
        for number, line in enumerate(iter_summary(checked.questions), start=1):
            console.print(f"  {number}. {line}", highlight=False, markup=False)
    console.print(escape(f"{path.name}：{len(checked.questions)} 题全部有效，可以导入。"), highlight=False)
    _print_summary(checked.questions)
    if checked.lints:
        err.print(
            f"[red]{escape(path.name)}：{len(checked.lints)} 处质量问题（确属有意的，在「备注」列写 lint:ignore=检查项；"
            "或加 --no-lint 跳过质量检查）。[/red]"
        )
        return 1
    return 0


def register(sub: Commands, common: ChineseArgumentParser) -> None:
    """quiz import | validate."""
    quiz = sub.add_parser("quiz", parents=[common], help="题库").add_subparsers(dest="action", required=True)
    p = quiz.add_parser("import", parents=[common], help="导入题库（CSV、XLSX 或 Word .docx，全部有效才导入）")
    p.add_argument("file")
    p.add_argument("--source", metavar="来源", help="文件中没有来源的题目统一使用的来源")
    p.add_argument("--category", metavar="分类", help="文件中没有分类的题目统一使用的分类")
    p.set_defaults(func=cmd_quiz_import)
    p = quiz.add_parser("validate", parents=[common], help="只检查题库文件，不导入；不给文件则检查内置题库")
    p.add_argument("file", nargs="?", help="题库文件；省略时检查内置题库（quizzes/bank/*.csv）")
    p.add_argument("--no-lint", action="store_true", help="跳过质量检查（答案出现在题干、选项长短悬殊、来源不具体等）")
    p.add_argument("--source", metavar="来源", help="文件中没有来源的题目统一使用的来源")
    p.add_argument("--category", metavar="分类", help="文件中没有分类的题目统一使用的分类")
    p.add_argument("--verbose", action="store_true", help="逐题列出将导入的题目（.docx 默认列出）")
    p.set_defaults(func=cmd_quiz_validate)
