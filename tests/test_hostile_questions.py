"""Hostile input to the question importer: random rows never crash it (only the documented
whole-file refusal escapes), every error names row and column, and a refused import
through the CLI leaves the bank as it was."""

from __future__ import annotations

import csv
import re

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from bot.store import Question
from quizzes.bank import check_file
from tests.support.hostile import FUZZ

cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["单选", "多选", "判断", "对", "错", "ACD", "Z", "", "=cmd|' /C calc'!A0", "1e9"]),
)


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=15), max_size=6))
def test_question_importer_refuses_cleanly(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("q") / "fuzz.csv"
    header = [
        "题型",
        "题干",
        "选项A",
        "选项B",
        "选项C",
        "选项D",
        "选项E",
        "选项F",
        "答案",
        "解析",
        "分类",
        "来源",
        "难度",
    ]
    with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as f:
        csv.writer(f).writerows([header, *rows])
    try:
        checked = check_file(path)
    except Exception as exc:  # only the documented whole-file refusal may escape
        from bot.tabular import FileProblem

        assert isinstance(exc, FileProblem), exc
        return
    for error in checked.errors:
        assert re.match(r"fuzz\.csv 第 \d+ 行 [A-M] 列「.+」：", str(error)), str(error)
    for question in checked.questions:
        assert question.answer and question.explanation and question.source


def test_rejected_import_leaves_the_bank_as_it_was(fuzz_env, tmp_path):
    from bot.cli import main

    with fuzz_env.store.session() as db:
        before = [(q.id, q.stem, q.answer) for q in db.exec(select(Question)).all()]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "题型,题干,选项A,选项B,答案,解析,分类,来源\n单选,一道新题？,甲,乙,A,解析,党史,来源\n单选,,甲,乙,C,解析,党史,来源\n",
        encoding="utf-8",
    )
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{fuzz_env.config.database.url}"\n', encoding="utf-8")
    assert main(["quiz", "import", str(bad), "--config", str(config)]) == 1
    with fuzz_env.store.session() as db:
        assert [(q.id, q.stem, q.answer) for q in db.exec(select(Question)).all()] == before
