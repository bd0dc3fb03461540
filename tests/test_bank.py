"""The bundled bank passes the same validator as imports; paper assembly rules."""

from __future__ import annotations

from collections import Counter
from datetime import UTC

from quizzes.bank import bundled_files, check_file, stem_key
from quizzes.paper import Candidate, assemble


def bundled():
    questions = []
    for path in bundled_files():
        checked = check_file(path)
        assert checked.ok, [str(e) for e in checked.errors[:10]]
        questions += checked.questions
    return questions


def test_bundled_bank_is_valid_and_large_enough():
    questions = bundled()
    assert len(questions) >= 300
    assert all(q.explanation and q.source for q in questions)
    assert len({q.key for q in questions}) == len(questions)
    kinds = Counter(q.kind for q in questions)
    assert set(kinds) == {"单选", "多选", "判断"}
    categories = {q.category.split("·")[0] for q in questions}
    assert {"党史", "党章", "党纪"} <= categories


def test_no_near_duplicates_across_the_bundled_files():
    from quizzes.bank import near_duplicates

    assert [(a.stem, b.stem) for a, b, _ in near_duplicates(bundled())] == []


def test_near_duplicate_stems_are_refused(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(
        "题型,题干,选项A,选项B,选项C,选项D,选项E,选项F,答案,解析,分类,来源,难度\n"
        "单选,中国共产党第一次全国代表大会是在哪一年召开的？,1919年,1921年,1927年,1949年,,,B,解析,党史,来源,1\n"
        "单选,中国共产党第一次全国代表大会在哪一年召开？,1919年,1921年,1927年,1949年,,,B,解析,党史,来源,1\n",
        encoding="utf-8",
    )
    checked = check_file(path)
    assert [str(e) for e in checked.errors] == [
        "dup.csv 第 3 行 B 列「题干」：与第 2 行的题干几乎相同（相似度 95%），请合并或改写"
    ]


def test_answer_keys_refer_to_existing_options():
    for q in bundled():
        ids = {o["id"] for o in q.options}
        assert q.answer and set(q.answer) <= ids, q.stem
        if q.kind == "多选":
            assert 2 <= len(q.answer) < len(ids), q.stem


def test_stem_identity_ignores_width_and_punctuation():
    assert stem_key("中共一大在哪一年召开？") == stem_key("中共一大在哪一年召开?  ")
    assert stem_key("中共一大在哪一年召开？") != stem_key("中共二大在哪一年召开？")


def pool(per_category: int, categories: str = "ABC") -> list[Candidate]:
    return [Candidate(i * 10 + n, c) for i, c in enumerate(categories, start=1) for n in range(per_category)]


def test_paper_is_balanced_across_categories():
    ids = assemble(pool(8), 9, [], set(), seed="b1:2026-11")
    counts = Counter(str(i)[0] for i in ids)
    assert len(ids) == 9 and set(counts.values()) == {3}


def test_paper_honours_configured_categories():
    ids = assemble(pool(8), 6, ["B"], set(), seed="s")
    assert len(ids) == 6 and all(20 <= i < 30 for i in ids)


def test_paper_avoids_recent_questions_while_the_bank_allows():
    candidates = pool(5, "AB")  # 10 questions
    recent = {10, 11, 12, 20, 21, 22}
    ids = assemble(candidates, 4, [], recent, seed="s")
    assert not set(ids) & recent
    ids = assemble(candidates, 6, [], recent, seed="s")  # only 4 fresh: 2 must repeat
    assert len(ids) == 6 and len(set(ids) - recent) == 4


def test_paper_is_reproducible_from_its_seed():
    assert assemble(pool(8), 5, [], set(), "x") == assemble(pool(8), 5, [], set(), "x")
    assert assemble(pool(30), 5, [], set(), "x") != assemble(pool(30), 5, [], set(), "y")


def test_a_parent_category_selects_its_subcategories():
    candidates = [
        Candidate(1, "党史·新民主主义革命时期"),
        Candidate(2, "党史·新时代"),
        Candidate(3, "党纪"),
        Candidate(4, "党史学"),
    ]
    assert sorted(assemble(candidates, 4, ["党史"], set(), "s")) == [1, 2]


# ------------------------------------------------------------------ quality lint


def question(
    stem="题干？",
    options=("甲", "乙", "丙", "丁"),
    answer="A",
    kind="单选",
    source="《中国共产党章程》第一章第二条",
    note="",
):
    from quizzes.bank import LETTERS, QuestionData, option_id
    from quizzes.lint import ignored_codes

    opts = [{"id": option_id(LETTERS[i]), "text": t} for i, t in enumerate(options)]
    return QuestionData(
        2, kind, stem, opts, [option_id(ch) for ch in answer], "解析", "党章", source, 2, ignored_codes(note)
    )


def codes(q, reference=()):
    from quizzes.lint import lint_questions

    return [f.code for f in lint_questions([q], reference)]


def test_lint_flags_the_answer_written_in_the_stem():
    assert codes(question("港珠澳大桥连接香港、珠海和哪里？", ("澳门", "深圳", "广州", "中山"))) == []
    assert codes(question("“人造天河”红旗渠是哪里修建的渠？", ("红旗渠", "人民胜利渠", "都江堰", "灵渠"))) == [
        "answer-in-stem"
    ]
    # a distractor in the stem too: nothing given away
    assert codes(question("红旗渠和都江堰中，修建于20世纪60年代的是？", ("红旗渠", "都江堰", "灵渠", "郑国渠"))) == []


def test_lint_flags_a_correct_option_much_longer_than_the_rest():
    long = ("党的全国代表大会和它所产生的中央委员会", "中央政治局", "中央书记处", "中央军委")
    assert codes(question(options=long)) == ["option-length"]
    assert codes(question(options=long, answer="B")) == []  # a long distractor gives nothing away
    assert codes(question(options=long, note="lint:ignore=option-length")) == []


def test_lint_flags_a_distractor_that_only_negates():
    assert codes(
        question(
            "党员对党的决议有不同意见时应当？",
            ("在坚决执行的前提下声明保留", "不在坚决执行的前提下声明保留", "暂不执行", "公开反对"),
        )
    ) == ["negated-distractor"]


def test_lint_wants_an_article_or_a_year_in_the_source():
    assert codes(question(source="《中国共产党简史》")) == ["source-precision"]
    for good in (
        "《中国共产党简史》（2021年）",
        "《中国共产党章程》总纲",
        "《中国共产党纪律处分条例》（2023年修订）第五条",
        "《中国共产党一百年大事记（1921年7月—2021年6月）》1935年条",
        "党的二十大报告第三部分",
    ):
        assert codes(question(source=good)) == [], good


def test_lint_refuses_superseded_versions_named_as_current():
    assert codes(question(source="《中国共产党纪律处分条例》（2018年修订）第五条")) == ["superseded"]
    assert codes(question(source="《中国共产党章程》（2017年10月）第三条")) == ["superseded"]
    assert codes(question(stem="根据2018年修订的《中国共产党纪律处分条例》，……？")) == ["superseded"]
    assert codes(question(source="《中国共产党章程》（2022年10月22日修改）第三条")) == []


def test_lint_finds_near_duplicates_against_the_bank():
    bank = [question("中国共产党第一次全国代表大会是在哪一年召开的？")]
    assert codes(question("中国共产党第一次全国代表大会在哪一年召开？"), bank) == ["near-duplicate"]
    assert codes(question("中国共产党第二次全国代表大会在哪座城市召开？"), bank) == []


def test_unknown_lint_codes_in_the_note_are_errors(tmp_path):
    path = tmp_path / "note.csv"
    path.write_text(
        "题型,题干,选项A,选项B,选项C,选项D,答案,解析,分类,来源,备注\n"
        "单选,题干？,甲,乙,丙,丁,A,解析,党章,《中国共产党章程》总纲,lint:ignore=option-lenght\n",
        encoding="utf-8",
    )
    assert [str(e) for e in check_file(path).errors] == [
        "note.csv 第 2 行 K 列「备注」：未知的检查项「option-lenght」，可用：answer-in-stem、option-length、negated-distractor、"
        "near-duplicate、source-precision、superseded"
    ]


def test_bundled_bank_passes_the_lint_and_the_bank_rules():
    from quizzes.bank import review_bundled

    review = review_bundled()
    problems = [str(p) for _, c in review.files for p in (*c.errors, *c.lints)] + review.problems
    assert problems == []
    true_false = sum(q.kind == "判断" for q in review.questions)
    assert true_false * 4 <= len(review.questions)


def test_bank_rule_refuses_more_than_a_quarter_true_false():
    from quizzes.lint import bank_problems

    assert bank_problems([question()] * 3 + [question(kind="判断", options=())]) == []
    assert bank_problems([question()] * 2 + [question(kind="判断", options=())]) == [
        "判断题 1 道，占 33%，超过全库的四分之一"
    ]


# ------------------------------------------------------------------ difficulty


def test_observed_correct_rate_sets_the_difficulty_after_enough_answers():
    from quizzes.paper import effective_difficulty

    assert effective_difficulty(3, answered=29, correct=29) == 3  # too few answers: the file's 难度
    assert effective_difficulty(3, answered=30, correct=24) == 1  # 80 %
    assert effective_difficulty(1, answered=30, correct=23) == 2  # 77 %
    assert effective_difficulty(1, answered=40, correct=20) == 2  # 50 %
    assert effective_difficulty(1, answered=40, correct=19) == 3
    assert effective_difficulty(0, answered=0, correct=0) == 2


def test_paper_mixes_difficulties_evenly_while_keeping_categories_balanced():
    # each category has 10 easy, 10 medium and 10 hard questions, ids grouped by difficulty
    candidates = [Candidate(c * 100 + d * 10 + n, "ABC"[c], d) for c in range(3) for d in (1, 2, 3) for n in range(10)]
    level = {c.id: c.difficulty for c in candidates}
    for month in range(12):
        ids = assemble(candidates, 9, [], set(), seed=f"7:2027-{month + 1:02d}")
        assert Counter(level[i] for i in ids) == {1: 3, 2: 3, 3: 3}
        assert Counter(i // 100 for i in ids) == {0: 3, 1: 3, 2: 3}
    ids = assemble(candidates, 10, [], set(), seed="x")
    assert sorted(Counter(level[i] for i in ids).values()) == [3, 3, 4]
    assert assemble(candidates, 10, [], set(), seed="x") == ids  # still deterministic


def test_paper_uses_what_difficulties_there_are():
    candidates = [Candidate(i, "A", 1) for i in range(10)] + [Candidate(100, "A", 3)]
    ids = assemble(candidates, 5, [], set(), seed="s")
    assert 100 in ids and len(ids) == 5


def test_answers_in_the_store_set_the_papers_difficulties(env):
    from datetime import datetime

    from sqlmodel import select

    from bot.store import Answer, Member, Question
    from quizzes.monthly import candidates_with_difficulty

    with env.store.session() as db:
        member = db.exec(select(Member)).first()
        easy, hard, few = db.exec(select(Question).where(Question.difficulty == 1)).all()[:3]
        at = datetime(2026, 11, 1, tzinfo=UTC)
        for n in range(30):  # an "easy" question most members get wrong
            db.add(
                Answer(
                    mode="practice",
                    member_id=member.id,
                    question_id=easy.id,
                    chosen=[],
                    is_correct=n < 10,
                    answered_at=at,
                )
            )
            db.add(
                Answer(
                    mode="review", member_id=member.id, question_id=hard.id, chosen=[], is_correct=False, answered_at=at
                )
            )
        for _ in range(29):
            db.add(
                Answer(
                    mode="monthly", member_id=member.id, question_id=few.id, chosen=[], is_correct=False, answered_at=at
                )
            )
    with env.store.session() as db:
        level = {c.id: c.difficulty for c in candidates_with_difficulty(db)}
    assert level[easy.id] == 3  # 33 % right over 30 answers
    assert level[hard.id] == 1  # 错题本 reviews do not count
    assert level[few.id] == 1  # 29 answers are not enough yet
