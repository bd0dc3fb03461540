"""The bundled bank passes the same validator as imports; paper assembly rules."""

from __future__ import annotations

from collections import Counter

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
        encoding="utf-8")
    checked = check_file(path)
    assert [str(e) for e in checked.errors] == [
        "dup.csv 第 3 行 B 列「题干」：与第 2 行的题干几乎相同（相似度 95%），请合并或改写"]


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
    candidates = [Candidate(1, "党史·新民主主义革命时期"), Candidate(2, "党史·新时代"), Candidate(3, "党纪"), Candidate(4, "党史学")]
    assert sorted(assemble(candidates, 4, ["党史"], set(), "s")) == [1, 2]
