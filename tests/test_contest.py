"""The live 抢答赛 through the webhook, with an injected clock and the ticking job."""

from __future__ import annotations

import asyncio
import re

import httpx
from sqlmodel import select

from bot.store.models import Campaign, Contest, ContestAnswer, ContestPlayer, Member
from scheduler.contests import tick
from tests.conftest import correct_letters, wrong_letters
from tests.support.chat import bind


def latest_question(env) -> str:
    with env.store.session() as db:
        text = db.exec(select(Campaign.text).where(Campaign.kind == "contest").order_by(Campaign.id.desc())).first()
    return "\n\n" + text.split("\n\n")[-1]


def run_tick(env) -> int:
    return tick(env.store, env.config, env.clock())


def test_contest_end_to_end_with_simultaneous_answers(env):
    wang = bind(env, "o-wang", "王书记", "0001")
    li, zhao, qian = (
        bind(env, "o-li", "李明", "0002"),
        bind(env, "o-zhao", "赵敏", "0003"),
        bind(env, "o-qian", "钱进", "0004"),
    )
    started = wang.say("抢答赛 2")
    assert "已发起抢答赛" in started and "（2 题）" in started
    assert "仅限支部书记和管理员" in li.say("抢答赛")
    for user in (li, zhao, qian):
        assert user.say("参赛").startswith("报名成功")
    assert "您已报名" in li.say("参赛")
    assert run_tick(env) == 0  # still inside the 2-minute join window
    env.clock.advance(minutes=2)
    assert "报名已截止" in wang.say("参赛")
    assert run_tick(env) == 1
    question = latest_question(env)
    assert "抢答赛第 1/2 题（60 秒）" in question
    right = correct_letters(env.store, question)

    # 李明 and 赵敏 answer at the same instant: the places must still be distinct.
    first, second = li.text_request(right), zhao.text_request(right)

    async def together():
        transport = httpx.ASGITransport(app=env.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(
                client.post(first.url, content=first.body.encode()),
                client.post(second.url, content=second.body.encode()),
            )

    replies = [li.reply_text(r.text) for r in asyncio.run(together())]
    assert sorted(re.search(r"第 (\d) 位", r).group(1) for r in replies) == ["1", "2"]
    assert "得 10 分" in "".join(replies) and "得 8 分" in "".join(replies)
    assert "每题只能作答一次" in li.say(right)
    assert "回答错误" in qian.say(wrong_letters(env.store, question))
    env.clock.advance(seconds=61)
    assert "60 秒作答时间已过" in qian.say(right)  # late: refused kindly
    assert run_tick(env) == 1
    second_round = latest_question(env)
    with env.store.session() as db:
        text = db.exec(select(Campaign.text).where(Campaign.kind == "contest").order_by(Campaign.id.desc())).first()
    assert "第 1 题答案：" in text and "当前排名：" in text and "抢答赛第 2/2 题" in text
    assert zhao.say(correct_letters(env.store, second_round)).startswith("✅ 回答正确！您是第 1 位")
    env.clock.advance(seconds=61)
    assert run_tick(env) == 1
    with env.store.session() as db:
        final = db.exec(select(Campaign).where(Campaign.kind == "contest").order_by(Campaign.id.desc())).first()
        contest = db.exec(select(Contest)).one()
        names = {m.id: m.name for m in db.exec(select(Member)).all()}
        scores = {names[p.member_id]: p.score for p in db.exec(select(ContestPlayer)).all()}
        places = [
            a.place
            for a in db.exec(select(ContestAnswer).where(ContestAnswer.index == 0, ContestAnswer.correct == True)).all()
        ]
    assert "抢答赛结束！最终排名" in final.text and contest.state == "done"
    # Either of the two simultaneous answers may win the first question; 赵敏 also wins the second.
    li_first = "第 1 位" in replies[0]
    assert scores == {"李明": 10 if li_first else 8, "赵敏": (8 if li_first else 10) + 10, "钱进": 0}
    assert sorted(places) == [1, 2]
    assert run_tick(env) == 0  # finished contests stay finished (and are kept)


def test_contest_without_players_ends_quietly(env):
    wang = bind(env, "o-wang", "王书记", "0001")
    wang.say("抢答赛")
    assert "已有一场抢答赛" in wang.say("抢答赛")
    env.clock.advance(minutes=3)
    assert run_tick(env) == 1
    with env.store.session() as db:
        assert db.exec(select(Contest)).one().state == "done"
    assert "已发起抢答赛" in wang.say("抢答赛 3")
