"""Importing the banks branches already have: Word documents in the common layouts and
spreadsheets with other headers; all or nothing, problems named by question and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from docx import Document
from openpyxl import Workbook
from sqlmodel import select

from bot.cli import main
from bot.store import Question, create_store
from bot.tabular import FileProblem
from quizzes.importing import parse_question_file
from quizzes.render import feedback

SOURCE = "本支部党史学习材料（2026年）"


def docx(path: Path, lines: list[str]) -> Path:
    document = Document()
    for line in lines:
        document.add_paragraph(line)
    document.save(str(path))
    return path


def answers(questions) -> list[tuple[str, str, list[str]]]:
    return [(q.kind, q.stem, q.answer) for q in questions]


def test_sections_numbered_stems_options_on_one_line_and_answer_lines(tmp_path):
    path = docx(
        tmp_path / "bank.docx",
        [
            "党史知识测试题（第一套）",
            "一、单选题（每题2分）",
            "1. 中共一大在哪座城市开幕？",
            "A. 北京  B. 上海  C. 广州  D. 武汉",
            "答案：B",
            "解析：1921年7月23日，中共一大在上海开幕。",
            "二、多选题",
            "2、下列属于三大战役的有？",
            "A、辽沈战役",
            "B、淮海战役",
            "C、平津战役",
            "D、渡江战役",
            "【答案】ABC",
            "三、判断题",
            "3. 遵义会议于1935年1月召开。",
            "答案：对",
        ],
    )
    questions, problems = parse_question_file(path, source=SOURCE, category="党史")
    assert problems == []
    assert answers(questions) == [
        ("单选", "中共一大在哪座城市开幕？", ["o2"]),
        ("多选", "下列属于三大战役的有？", ["o1", "o2", "o3"]),
        ("判断", "遵义会议于1935年1月召开。", ["t"]),
    ]
    first = questions[0]
    assert [o["text"] for o in first.options] == ["北京", "上海", "广州", "武汉"]
    assert first.explanation == "1921年7月23日，中共一大在上海开幕。"
    assert first.source == SOURCE and first.category == "党史"
    assert questions[1].explanation == ""  # accepted without 解析


def test_answers_in_the_stems_brackets_full_width_marks_and_parenthesised_numbers(tmp_path):
    path = docx(
        tmp_path / "brackets.docx",
        [
            "（1）中国共产党第一次全国代表大会的最后一天会议转移到（ D ）举行。",
            "A．上海法租界  B．杭州西湖  C．北京大学  D．嘉兴南湖",
            "（2）党章规定，党员必须履行的义务有（　AB　）。",
            "A．认真学习  B．全心全意为人民服务",
            "C．参加选举",
            "正确答案：AB",
            "（3）三湾改编确立了“支部建在连上”的原则。（√）",
            "（4）古田会议于1935年召开。（×）",
            "解析：古田会议于1929年12月召开。",
            "来源：《中国共产党一百年大事记（1921年7月—2021年6月）》1929年条",
        ],
    )
    questions, problems = parse_question_file(path, source=SOURCE, category="党史")
    assert problems == []
    assert answers(questions) == [
        ("单选", "中国共产党第一次全国代表大会的最后一天会议转移到（　　）举行。", ["o4"]),
        ("多选", "党章规定，党员必须履行的义务有（　　）。", ["o1", "o2"]),
        ("判断", "三湾改编确立了“支部建在连上”的原则。（　　）", ["t"]),
        ("判断", "古田会议于1935年召开。（　　）", ["f"]),
    ]
    assert questions[3].source == "《中国共产党一百年大事记（1921年7月—2021年6月）》1929年条"  # its own line wins
    assert questions[0].source == SOURCE


def test_true_false_written_as_options_and_continuation_lines(tmp_path):
    path = docx(
        tmp_path / "tf.docx",
        [
            "三、判断题",
            "1、八七会议确定了土地革命和武装反抗国民党反动派的总方针，",
            "会议在汉口召开。",
            "A.正确 B.错误",
            "参考答案：A",
        ],
    )
    questions, problems = parse_question_file(path, source=SOURCE, category="党史")
    assert problems == []
    assert answers(questions) == [
        ("判断", "八七会议确定了土地革命和武装反抗国民党反动派的总方针，会议在汉口召开。", ["t"])
    ]


def test_a_broken_question_refuses_the_file_naming_its_number_and_line(tmp_path):
    path = docx(
        tmp_path / "broken.docx",
        [
            "一、单选题",
            "1. 中共一大在哪座城市开幕？",
            "A. 北京  B. 上海  C. 广州  D. 武汉",
            "答案：B",
            "2. 中共二大在哪座城市召开？",
            "A. 北京  B. 上海  C. 广州  D. 武汉",
            "3. 中共三大在哪座城市召开？",
            "A. 北京  B. 上海  C. 广州",
            "答案：E",
        ],
    )
    _questions, problems = parse_question_file(path, source=SOURCE, category="党史")
    assert [str(p) for p in problems] == [
        "broken.docx 第 2 题（第 5 行）：没有找到答案（应写「答案：B」一行，或写在题干括号里，如「（ B ）」「（√）」）",
        "broken.docx 第 3 题（第 9 行）：答案中的 E 没有对应的选项（已填选项 A-C）",
    ]


def test_a_stray_line_after_the_answer_is_a_problem(tmp_path):
    path = docx(tmp_path / "stray.docx", ["1. 题干？", "A. 甲 B. 乙", "答案：A", "（本题2分）"])
    _, problems = parse_question_file(path, source=SOURCE, category="党史")
    assert [str(p) for p in problems] == [
        "stray.docx 第 1 题（第 4 行）：无法识别这一行：「（本题2分）」（应为选项、答案：、解析： 或下一题）"
    ]


def test_a_document_without_source_needs_the_command_line_source(tmp_path):
    path = docx(tmp_path / "nosource.docx", ["1. 题干？（A）", "A. 甲 B. 乙"])
    with pytest.raises(FileProblem, match="--source"):
        parse_question_file(path, category="党史")
    with pytest.raises(FileProblem, match="没有找到题目"):
        parse_question_file(docx(tmp_path / "empty.docx", ["只有标题"]), source=SOURCE, category="党史")


def test_spreadsheet_with_other_headers(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["序号", "试题类型", "试题内容", "A", "B", "C", "D", "参考答案", "答案解析", "知识点"])
    sheet.append(
        [1, "单项选择题", "中共一大在哪座城市开幕？", "北京", "上海", "广州", "武汉", "B", "在上海开幕。", "党史"]
    )
    sheet.append([2, "判断题", "遵义会议于1935年1月召开。", "正确", "错误", None, None, "A", None, "党史"])
    sheet.append(
        [3, "多项选择题", "三大战役包括？", "辽沈战役", "淮海战役", "平津战役", "渡江战役", "A、B、C", "", "党史"]
    )
    sheet.append([4, "判断题", "古田会议于1935年召开。", None, None, None, None, "×", "", "党史"])
    path = tmp_path / "other.xlsx"
    book.save(path)
    with pytest.raises(FileProblem, match="缺少表头「来源」.*--source"):
        parse_question_file(path)
    questions, problems = parse_question_file(path, source=SOURCE)
    assert problems == []
    assert answers(questions) == [
        ("单选", "中共一大在哪座城市开幕？", ["o2"]),
        ("判断", "遵义会议于1935年1月召开。", ["t"]),
        ("多选", "三大战役包括？", ["o1", "o2", "o3"]),
        ("判断", "古田会议于1935年召开。", ["f"]),
    ]
    assert {q.source for q in questions} == {SOURCE}


def test_spreadsheet_errors_name_the_users_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("题目,A,B,正确答案,出处,分类\n题干一？,甲,乙,C,来源,党史\n", encoding="utf-8")
    _, problems = parse_question_file(path)
    assert [str(p) for p in problems] == ["bad.csv 第 2 行 D 列「答案」：答案中的 C 没有对应的选项（已填选项 A-B）"]
    path.write_text("题目,试题内容,答案\n甲,乙,A\n", encoding="utf-8")
    with pytest.raises(FileProblem, match="都表示「题干」"):
        parse_question_file(path)


def test_cli_imports_a_docx_all_or_nothing_and_validate_lists_it(tmp_path, no_env_overrides, capsys):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite:///cli.db"\n', encoding="utf-8")
    assert main(["init", "--config", str(cfg)]) == 0
    store = create_store(f"sqlite:///{tmp_path / 'cli.db'}")

    def count() -> int:
        with store.session() as db:
            return len(db.exec(select(Question)).all())

    before = count()
    capsys.readouterr()
    broken = docx(tmp_path / "broken.docx", ["1. 好题？", "A. 甲 B. 乙", "答案：A", "2. 坏题？", "A. 甲 B. 乙"])
    assert main(["quiz", "import", str(broken), "--source", SOURCE, "--category", "党史", "--config", str(cfg)]) == 1
    assert "第 2 题（第 4 行）：没有找到答案" in capsys.readouterr().err
    assert count() == before
    good = docx(
        tmp_path / "good.docx",
        [
            "一、单选题",
            "1. 本支部自编题一？",
            "A. 甲 B. 乙 C. 丙",
            "答案：C",
            "解析：自编。",
            "2. 本支部自编题二？（A）",
            "A. 甲 B. 乙 C. 丙",
        ],
    )
    assert (
        main(
            ["quiz", "validate", str(good), "--no-lint", "--source", SOURCE, "--category", "党史", "--config", str(cfg)]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "1. 单选 本支部自编题一？  答案：C" in captured.out and "2 题全部有效" in captured.out
    assert "第 2 题（第 6 行）：没有解析" in captured.err
    assert count() == before
    assert main(["quiz", "import", str(good), "--source", SOURCE, "--category", "党史", "--config", str(cfg)]) == 0
    assert "新增 2 题" in capsys.readouterr().out
    with store.session() as db:
        plain = db.exec(select(Question).where(Question.stem == "本支部自编题二？（　　）")).one()
        text = feedback(plain, ["o1", "o2", "o3"], correct=False)
    assert "解析" not in text and text.endswith(f"来源：{SOURCE}") and "正确答案：A" in text


def test_options_and_answer_on_the_stem_line_and_answer_explanations(tmp_path):
    path = docx(
        tmp_path / "inline.docx",
        [
            "1. 遵义会议召开于（ ）。A. 1934年 B. 1935年 C. 1936年 D. 1937年  答案：B",
            "答案解析：遵义会议于1935年1月召开。",
            "2、七届二中全会在（　）召开。 A、西柏坡B、延安C、瑞金",
            "【答案】A",
            "【解析】1949年3月在河北平山县西柏坡召开。",
        ],
    )
    questions, problems = parse_question_file(path, source=SOURCE, category="党史")
    assert problems == []
    assert answers(questions) == [
        ("单选", "遵义会议召开于（ ）。", ["o2"]),
        ("单选", "七届二中全会在（　）召开。", ["o1"]),
    ]
    assert [o["text"] for o in questions[0].options] == ["1934年", "1935年", "1936年", "1937年"]
    assert questions[0].explanation == "遵义会议于1935年1月召开。"
    assert questions[1].explanation == "1949年3月在河北平山县西柏坡召开。"


def test_a_question_imported_without_explanation_shows_no_explanation_line_in_chat(tmp_path, clock, database_url):
    """Through the webhook: 答题 on a paper of a branch's own Word questions, one with 解析
    and one without."""
    from quizzes.bank import import_questions
    from tests.conftest import build_env, correct_letters

    path = docx(
        tmp_path / "own.docx",
        [
            "1. 本支部自编题：主题党日一般每月开展几次？",
            "A. 1次 B. 2次 C. 3次",
            "答案：A",
            "解析：每月相对固定1天。",
            "2. 本支部自编题：党小组会一般每月召开几次？",
            "A. 1次 B. 2次 C. 4次",
            "答案：A",
        ],
    )
    questions, problems = parse_question_file(path, source=SOURCE, category="党纪")
    assert problems == []
    env = build_env(tmp_path, clock, bank=None, database_url=database_url)
    try:
        with env.store.session() as db:
            import_questions(db, questions)
        user = env.wechat("o-li")
        assert "绑定成功" in user.say("绑定 李明 0002")
        reply = user.say("答题")
        feedbacks = {}
        for _ in range(2):
            stem = next(line for line in reply.split("\n\n")[-1].splitlines() if line.startswith("本支部自编题"))
            reply = user.say(correct_letters(env.store, reply))
            feedbacks[stem] = reply.split("\n\n")[0]
        with_explanation = feedbacks["本支部自编题：主题党日一般每月开展几次？"]
        without = feedbacks["本支部自编题：党小组会一般每月召开几次？"]
        assert "解析：每月相对固定1天。" in with_explanation
        assert without.startswith("✅ 回答正确！") and "解析" not in without and f"来源：{SOURCE}" in without
    finally:
        env.store.dispose()


def test_any_text_in_a_document_gives_questions_or_problems_never_a_crash():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from quizzes.bank import check_table
    from quizzes.importing import DocTable, normalize_row, parse_lines

    pieces = st.sampled_from(
        list("1234567890.、()（）ABCDEF答案解析：:【】√×对错正确 ")
        + ["一、单选题", "二、多选题", "三、判断题", "（1）", "答案：", "来源：", "分类：", "难度："]
    )
    line = st.lists(pieces, max_size=12).map("".join)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(line, st.booleans()), max_size=15))
    def check(lines):
        questions, problems = parse_lines("x.docx", lines)
        table = DocTable("x.docx", questions)
        table.rows = [(n, normalize_row(row, "来源（2026年）", "党史")) for n, row in table.rows]
        checked = check_table(table, require_explanation=False)
        for problem in [*problems, *checked.errors]:
            assert str(problem).startswith("x.docx 第 ")

    check()


def test_a_file_that_is_not_a_word_document_is_refused(tmp_path):
    path = tmp_path / "fake.docx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FileProblem, match="无法作为 Word 文档"):
        parse_question_file(path, source=SOURCE, category="党史")
    with pytest.raises(FileProblem, match="只支持 .csv、.xlsx 或 .docx"):
        parse_question_file(docx(tmp_path / "x.doc", ["1. 题？"]), source=SOURCE, category="党史")
