"""答题 through the webhook: a whole quiz, feedback, resume, one attempt a month."""

from __future__ import annotations

import re
from datetime import UTC

from sqlmodel import select

from bot.store import Answer, Attempt, Paper, PointsEntry, Question
from tests.conftest import correct_letters, wrong_letters
from tests.support.chat import bind


def test_whole_quiz_with_feedback_and_score(env):
    user = bind(env, "o-li", "李明", "0002")
    reply = user.say("答题")
    assert "共 10 题" in reply and "第 1/10 题" in reply
    for number in range(1, 11):
        answer = wrong_letters(env.store, reply) if number in (3, 7) else correct_letters(env.store, reply)
        reply = user.say(answer.lower() if number == 2 else answer)
        if number in (3, 7):
            assert reply.startswith("❌ 回答错误。正确答案：")
        else:
            assert reply.startswith("✅ 回答正确！")
        assert "解析：" in reply and "来源：" in reply
        if number < 10:
            assert f"第 {number + 1}/10 题" in reply
    assert "本月测试完成！答对 8/10 题，得 80 分" in reply
    assert "本支部排名第 1 位" in reply
    with env.store.session() as db:
        attempt = db.exec(select(Attempt)).one()
        assert (attempt.correct, attempt.score, attempt.finished_at is not None) == (8, 80, True)
        assert len(db.exec(select(Answer)).all()) == 10
        assert sum(p.amount for p in db.exec(select(PointsEntry)).all()) == 80


def test_letters_in_any_form_are_accepted(env):
    user = bind(env, "o-li", "李明", "0002")
    reply = user.say("答题")
    seen_multi = False
    for _ in range(10):
        right = correct_letters(env.store, reply)
        if len(right) > 1 and right not in ("对", "错"):
            seen_multi = True
            spaced = " ".join(right)  # "A C"
            full_width = "".join(chr(ord(c) + 0xFEE0) for c in right)  # "ＡＣ"
            reply = user.say(spaced if "A" in right else full_width)
        else:
            reply = user.say(right)
        assert reply.startswith("✅"), reply
    assert seen_multi


def test_options_are_shuffled_per_member_but_the_paper_is_shared(env):
    li = bind(env, "o-li", "李明", "0002")
    zhao = bind(env, "o-zhao", "赵敏", "0003")
    first_li, first_zhao = li.say("答题"), zhao.say("答题")
    with env.store.session() as db:
        papers = db.exec(select(Paper)).all()
        attempts = db.exec(select(Attempt)).all()
    assert len(papers) == 1  # one paper for the branch
    assert attempts[0].option_orders != attempts[1].option_orders  # different option orders
    stem = lambda reply: reply.split("\n\n")[-1].splitlines()[1]
    assert stem(first_li) == stem(first_zhao)


def test_resume_across_days(env):
    user = bind(env, "o-li", "李明", "0002")
    reply = user.say("答题")
    for _ in range(3):
        reply = user.say(correct_letters(env.store, reply))
    env.clock.advance(days=2)
    resumed = user.say("答题")
    assert "欢迎回来，继续第 4 题" in resumed and "第 4/10 题" in resumed
    # The dialog itself also survives: answering straight away works.
    env.clock.advance(days=1)
    assert user.say(correct_letters(env.store, resumed)).startswith("✅")


def test_one_attempt_per_month(env):
    user = bind(env, "o-li", "李明", "0002")
    reply = user.say("答题")
    for _ in range(10):
        reply = user.say(correct_letters(env.store, reply))
    again = user.say("答题")
    assert "您已完成2026年11月的测试" in again and "100 分" in again
    with env.store.session() as db:
        assert len(db.exec(select(Attempt)).all()) == 1
    # A letter sent after finishing is not an answer any more.
    assert "现在没有待回答的题目" in user.say("A")
    env.clock.set_local(2026, 12, 1, 8, 0)
    assert "2026年12月党史党纪知识测试" in user.say("答题")


def test_other_text_during_quiz_gets_a_hint_and_commands_still_work(env):
    user = bind(env, "o-li", "李明", "0002")
    reply = user.say("答题")
    hint = user.say("这题好难")
    assert "您正在答题中" in hint and "第 1/10 题" in hint
    assert "本月积分" in user.say("积分")
    assert user.say(correct_letters(env.store, reply)).startswith("✅")


def test_invalid_letters_are_refused_without_counting(env):
    user = bind(env, "o-li", "李明", "0002")
    reply = user.say("答题")
    while "（单选）" not in reply.split("\n\n")[-1]:
        reply = user.say(correct_letters(env.store, reply))
    assert "只回复一个字母" in user.say("AB")
    assert "A-D" in user.say("F")
    with env.store.session() as db:
        answered = len(db.exec(select(Answer)).all())
    assert user.say(correct_letters(env.store, reply)).startswith("✅")
    with env.store.session() as db:
        assert len(db.exec(select(Answer)).all()) == answered + 1


def test_quiz_left_unfinished_closes_at_month_end(env):
    user = bind(env, "o-li", "李明", "0002")
    user.say("答题")
    env.clock.set_local(2026, 12, 1, 9, 0)
    assert "2026年11月的测试已经结束" in user.say("A")
    assert "2026年12月" in user.say("答题")


def test_retried_deliveries_are_processed_once(env):
    user = bind(env, "o-li", "李明", "0002")
    reply = user.say("答题")
    signed = user.text_request(correct_letters(env.store, reply))
    replies = [user.reply_text(user.post(signed).text) for _ in range(4)]  # byte-for-byte the same request
    assert len(set(replies)) == 1 and replies[0].startswith("✅")
    with env.store.session() as db:
        assert len(db.exec(select(Answer)).all()) == 1
        assert len(db.exec(select(PointsEntry)).all()) == 1
        assert db.exec(select(Attempt)).one().position == 1


def test_concurrent_retries_wait_for_the_original(tmp_path, clock, database_url, monkeypatch):
    """Four deliveries in flight at once: one is processed, all get the same reply."""
    import asyncio

    import httpx

    import bot.app
    from tests.conftest import build_env

    # A retry waits this long for the original before answering empty: long enough for any
    # machine's pace, so the test sees the coalescing and not a busy machine.
    monkeypatch.setattr(bot.app, "DUPLICATE_WAIT_SECONDS", 3600.0)
    env = build_env(tmp_path, clock, database_url=database_url)
    user = bind(env, "o-li", "李明", "0002")
    reply = user.say("答题")
    signed = user.text_request(correct_letters(env.store, reply))

    async def burst() -> list[str]:
        transport = httpx.ASGITransport(app=env.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*[client.post(signed.url, content=signed.body.encode()) for _ in range(4)])
        assert all(r.status_code == 200 for r in responses)
        return [r.text for r in responses]

    texts = asyncio.run(burst())
    contents = {re.sub(r"<CreateTime>\d+</CreateTime>", "", t) for t in texts}
    assert len(contents) == 1 and "✅" in user.reply_text(texts[0])
    with env.store.session() as db:
        assert len(db.exec(select(Answer)).all()) == 1
        assert len(db.exec(select(PointsEntry)).all()) == 1


def test_two_answers_at_once_through_two_instances_are_graded_in_turn(env, monkeypatch):
    """One member's two answers reach two instances at the same moment: the second waits
    for the first (the attempt row is locked) and grades the next question; neither gets
    the apology and nothing is counted twice."""
    import threading
    import time
    from datetime import datetime

    from bot.engine import Engine
    from bot.messages import Inbound
    from bot.store import create_store
    from handlers import asking, build_registry

    user = bind(env, "o-twice", "李明", "0002")
    reply = user.say("答题")
    with env.store.session() as db:
        paper = db.exec(select(Paper)).one()
        kinds = [db.get(Question, qid).kind for qid in paper.question_ids]
    # Move on to two questions of the same kind, so one answer text fits whichever is first.
    position = next(p for p in range(len(kinds) - 1) if kinds[p] == kinds[p + 1])
    for _ in range(position):
        reply = user.say(correct_letters(env.store, reply))
    text = "对" if kinds[position] == "判断" else "A"
    slow_grade = asking.grade

    def grade(*args, **kwargs):  # widen the window between reading the attempt and writing the answer
        result = slow_grade(*args, **kwargs)
        time.sleep(0.3)
        return result

    monkeypatch.setattr(asking, "grade", grade)

    stores = [create_store(env.config.database.url) for _ in range(2)]
    engines = [Engine(store, env.config, build_registry(), env.clock) for store in stores]
    replies: list[str] = ["", ""]
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            replies[i] = engines[i].handle(Inbound("wechat", "o-twice", "text", f"twice-{i}", datetime.now(UTC), text))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)  # returns when both are graded; the bound only stops a hung run
    for store in stores:
        store.dispose()
    assert not errors, errors
    assert all(reply.startswith(("✅", "❌")) for reply in replies), replies  # both graded
    assert {f"第 {position + 2}/10 题", f"第 {position + 3}/10 题"} == {
        re.search(r"第 \d+/10 题", r).group(0) for r in replies
    }
    with env.store.session() as db:
        attempt = db.exec(select(Attempt)).one()
        answers = db.exec(select(Answer).where(Answer.attempt_id == attempt.id)).all()
    assert attempt.position == position + 2 == len(answers) == len({a.question_id for a in answers})
