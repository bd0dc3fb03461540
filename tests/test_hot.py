"""The hot path's data layer (bot/store/hot.py), function by function, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.store import Answer, Attempt, Branch, Member, MemberStatus, Paper, Question, create_store, hot
from bot.store.models import Campaign, Delivery
from quizzes.points import attempt_finished, award

T0 = datetime(2026, 11, 10, 1, 0, tzinfo=UTC)
MONTH = "2026-11"


@pytest.fixture
def store(database_url: str):
    s = create_store(database_url)
    s.create_all()
    yield s
    s.dispose()


def _seed(store) -> dict[str, int]:
    """Two branches. This month in 一支部: 丙 90, 乙 80 (finished first), 甲 80, 丁 unfinished;
    in 二支部: 戊 100. Points as the quiz gives them, plus 甲's older 50."""
    with store.session() as db:
        one, two = Branch(name="一支部"), Branch(name="二支部")
        db.add_all([one, two])
        db.flush()
        assert one.id is not None and two.id is not None
        people = {}
        for i, (name, branch) in enumerate([("甲", one), ("乙", one), ("丙", one), ("丁", one), ("戊", two)]):
            member = Member(name=name, phone=f"1390000000{i}", branch_id=branch.id, openid=f"o-{name}")
            db.add(member)
            db.flush()
            assert member.id is not None
            people[name] = member.id
        people["一支部"], people["二支部"] = one.id, two.id
        papers = {}
        for branch in (one, two):
            paper = Paper(branch_id=branch.id, month=MONTH, question_ids=[1], created_at=T0)
            db.add(paper)
            db.flush()
            papers[branch.id] = paper.id
        finishers = [("乙", 80, 1), ("甲", 80, 2), ("丙", 90, 3), ("戊", 100, 4), ("丁", 0, None)]
        for name, score, minutes in finishers:
            branch_id = two.id if name == "戊" else one.id
            done = None if minutes is None else T0 + timedelta(minutes=minutes)
            db.add(
                Attempt(
                    member_id=people[name],
                    paper_id=papers[branch_id],
                    branch_id=branch_id,
                    month=MONTH,
                    option_orders={},
                    score=score,
                    started_at=T0,
                    finished_at=done,
                )
            )
            if done is not None:
                attempt_finished(db, MONTH, branch_id, score)
                award(db, people[name], branch_id, score, f"monthly:{MONTH}", MONTH, done)
        award(db, people["甲"], one.id, 50, "monthly:2026-10", "2026-10", T0 - timedelta(days=20))
    return people


def test_message_keys_are_recorded_once(store):
    with store.session() as db:
        hot.record_message(db, "k1", "wechat", "好的", T0)
        assert hot.recorded_reply(db, "k1") == "好的"
        assert hot.recorded_reply(db, "k2") is None
    with pytest.raises(IntegrityError), store.session() as db:
        hot.record_message(db, "k1", "wechat", "again", T0)
    with store.session() as db:
        assert hot.recorded_reply(db, "k1") == "好的"


def test_member_by_sender_on_each_channel_with_branch_and_dialog(store):
    people = _seed(store)
    with store.session() as db:
        hot.save_dialog(db, "wechat:o-甲", "quiz", {"attempt_id": 7}, None, T0)
    with store.session() as db:
        member, dialog = hot.member_and_dialog(db, "wechat", "o-甲", "wechat:o-甲")
        assert member is not None and member.id == people["甲"] and member.branch_name == "一支部"
        assert member.is_active and member.role == "党员" and member.subscribed
        assert dialog is not None and dialog.kind == "quiz" and dialog.data == {"attempt_id": 7}
        assert dialog.updated_at == T0 and dialog.expires_at is None
        assert hot.member_and_dialog(db, "wechat", "o-乙", "wechat:o-乙")[1] is None
        assert hot.member_and_dialog(db, "wechat", "nobody", "wechat:nobody") == (None, None)
        assert hot.member_and_dialog(db, "wecom", "o-甲", "wecom:o-甲") == (None, None)
        by_id = hot.member_by_sender(db, "cli", str(people["戊"]))
        assert by_id is not None and by_id.name == "戊" and by_id.branch_name == "二支部"
        assert hot.member_by_sender(db, "cli", "戊") is None
        db.get(Member, people["丁"]).status = MemberStatus.TRANSFERRED.value  # type: ignore[union-attr]
        db.flush()
        left = hot.member_by_sender(db, "wechat", "o-丁")
        assert left is not None and not left.is_active


def test_dialogs_are_replaced_and_ended(store):
    _seed(store)
    later = T0 + timedelta(hours=1)
    with store.session() as db:
        hot.save_dialog(db, "wechat:o-乙", "practice", {"qid": 1}, later, T0)
        hot.save_dialog(db, "wechat:o-乙", "quiz", {"attempt_id": 2}, None, later)
        dialog = hot.member_and_dialog(db, "wechat", "o-乙", "wechat:o-乙")[1]
        assert dialog is not None and (dialog.kind, dialog.data, dialog.expires_at) == ("quiz", {"attempt_id": 2}, None)
        assert dialog.updated_at == later
        hot.end_dialog(db, "wechat:o-乙")
        assert hot.member_and_dialog(db, "wechat", "o-乙", "wechat:o-乙")[1] is None
        hot.end_dialog(db, "wechat:o-乙")  # nothing to end: no error


def test_subscribed_flag_and_unread_count(store):
    people = _seed(store)
    with store.session() as db:
        hot.set_subscribed(db, people["乙"], False)
        campaign = Campaign(kind="broadcast", text="开会", created_at=T0, branch_id=people["一支部"])
        db.add(campaign)
        db.flush()
        for status, read in [("inbox", None), ("inbox", None), ("inbox", T0), ("sent", None)]:
            db.add(Delivery(campaign_id=campaign.id, member_id=people["乙"], status=status, read_at=read))
            campaign = Campaign(kind="broadcast", text="再开会", created_at=T0, branch_id=people["一支部"])
            db.add(campaign)
            db.flush()
    with store.session() as db:
        member = hot.member_by_sender(db, "wechat", "o-乙")
        assert member is not None and not member.subscribed
        assert hot.unread_count(db, people["乙"]) == 2
        assert hot.unread_count(db, people["甲"]) == 0


def test_month_standings_in_board_order(store):
    p = _seed(store)
    one = p["一支部"]
    with store.session() as db:
        board = hot.month_top(db, MONTH, one)
        assert [(s.name, s.points, s.branch) for s in board] == [
            ("丙", 90, "一支部"),
            ("乙", 80, "一支部"),
            ("甲", 80, "一支部"),
        ]
        assert [s.name for s in hot.month_top(db, MONTH)] == ["戊", "丙", "乙", "甲"]
        assert [s.name for s in hot.month_top(db, MONTH, limit=2)] == ["戊", "丙"]
        assert hot.month_place(db, MONTH, p["甲"], one) == hot.Place(3, 3, 80)  # 乙 finished first
        assert hot.month_place(db, MONTH, p["乙"], one) == hot.Place(2, 3, 80)
        assert hot.month_place(db, MONTH, p["甲"]) == hot.Place(4, 4, 80)
        assert hot.month_place(db, MONTH, p["丁"], one) == hot.Place(None, 3, 0)
        assert hot.month_place(db, "2026-12", p["甲"], one) == hot.Place(None, 0, 0)


def test_total_standings_in_board_order(store):
    p = _seed(store)
    one = p["一支部"]
    with store.session() as db:
        assert [(s.name, s.points) for s in hot.total_top(db, one)] == [("甲", 130), ("丙", 90), ("乙", 80)]
        assert [s.name for s in hot.total_top(db)] == ["甲", "戊", "丙", "乙"]
        assert hot.total_place(db, p["乙"], one) == hot.Place(3, 3, 80)
        assert hot.total_place(db, p["戊"]) == hot.Place(2, 4, 100)
        assert hot.total_place(db, p["丁"], one) == hot.Place(None, 3, 0)
        assert hot.total_place(db, p["戊"], one) == hot.Place(None, 3, 0)  # no points earned in 一支部


def test_points_card_in_one_read(store):
    p = _seed(store)
    one = p["一支部"]
    with store.session() as db:
        assert hot.points_card(db, p["甲"], one, MONTH) == hot.PointsCard(80, 130, 3, 1, 3)
        assert hot.points_card(db, p["丙"], one, MONTH) == hot.PointsCard(90, 90, 1, 2, 3)
        assert hot.points_card(db, p["丁"], one, MONTH) == hot.PointsCard(0, 0, None, None, 3)
        assert hot.points_card(db, p["甲"], one, "2026-10") == hot.PointsCard(50, 130, None, 1, 3)


def test_quiz_attempt_questions_answer_and_review_card(store):
    """丁's attempt on a two-question paper: read, answered wrong, moved on, carded."""
    p = _seed(store)
    with store.session() as db:
        for n in range(2):
            db.add(
                Question(
                    kind="单选",
                    stem=f"题{n}",
                    stem_key=f"k{n}",
                    options=[{"id": "o1", "text": "甲"}, {"id": "o2", "text": "乙"}],
                    answer=["o1"],
                    explanation="",
                    category="党史",
                    source="测试",
                )
            )
        db.flush()
        ids = list(db.exec(select(Question.id).order_by(Question.id)).all())
        attempt = db.exec(select(Attempt).where(Attempt.member_id == p["丁"])).one()
        paper = db.get(Paper, attempt.paper_id)
        assert paper is not None
        paper.question_ids = ids
        attempt.option_orders = {str(ids[0]): ["o2", "o1"], str(ids[1]): ["o1", "o2"]}
        db.add_all([paper, attempt])
        first, second = ids
        attempt_id = attempt.id
    with store.session() as db:
        row = hot.attempt_for_answer(db, attempt_id)
        assert row is not None and row.question_ids == ids and row.position == 0 and row.finished_at is None
        assert row.option_orders[str(first)] == ["o2", "o1"] and row.started_at == T0
        assert hot.attempt_for_answer(db, None) is None and hot.attempt_for_answer(db, 10**9) is None
        both = hot.questions(db, [first, second])
        assert set(both) == {first, second} and both[first].options[0] == {"id": "o1", "text": "甲"}
        assert both[first].answer == ["o1"] and both[first].kind == "单选" and both[first].active
        assert list(hot.questions(db, [second])) == [second] and hot.questions(db, []) == {}
        later = T0 + timedelta(minutes=9)
        hot.advance_attempt(db, attempt_id, position=2, correct=1, score=10, asked_at=T0, finished_at=later)
        hot.record_answer(
            db,
            member_id=p["丁"],
            question_id=first,
            mode="monthly",
            chosen=["o2"],
            correct=False,
            seconds=3.5,
            at=later,
        )
        assert hot.review_card(db, p["丁"], first) is None
        hot.save_review_card(db, hot.CardRow(None, p["丁"], first, "{}", later, 0.5, 1, later, None))
    with store.session() as db:
        row = hot.attempt_for_answer(db, attempt_id)
        assert row is not None and (row.position, row.correct, row.score, row.finished_at) == (2, 1, 10, later)
        answer = db.exec(select(Answer).where(Answer.member_id == p["丁"])).one()
        assert (answer.chosen, answer.is_correct, answer.seconds_taken, answer.answered_at) == (
            ["o2"],
            False,
            3.5,
            later,
        )
        card = hot.review_card(db, p["丁"], first)
        assert card is not None and card.id is not None and (card.card, card.lapses, card.due) == ("{}", 1, later)
        hot.save_review_card(db, replace(card, lapses=2, graduated_at=later))
    with store.session() as db:
        card = hot.review_card(db, p["丁"], first)
        assert card is not None and (card.lapses, card.graduated_at) == (2, later)
