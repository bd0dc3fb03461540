"""练习, 挑战, 错题/复习 (FSRS) and question statistics, through the webhook with an injected clock."""

from __future__ import annotations

from sqlmodel import select

from bot.store import PointsEntry
from bot.store.models import ChallengeRun, QuestionReport, ReviewCard
from tests.conftest import correct_letters, wrong_letters


def member(env, openid="o-li", name="李明", tail="0002"):
    user = env.wechat(openid)
    assert "绑定成功" in user.say(f"绑定 {name} {tail}")
    return user


def points(env, reason_prefix: str) -> int:
    with env.store.session() as db:
        return sum(p.amount for p in db.exec(select(PointsEntry)).all() if p.reason.startswith(reason_prefix))


def test_practice_daily_cap_and_never_the_month_board(env):
    user = member(env)
    reply = user.say("练习")
    assert "开始练习" in reply and "练习（" in reply
    for number in range(7):
        reply = user.say(correct_letters(env.store, reply))
        assert reply.startswith("✅")
        if number < 5:
            assert f"积分 +1，今日 {number + 1}/5" in reply
        else:
            assert "今日练习积分已满 5 分" in reply
    assert points(env, "practice:") == 5
    assert "累计积分：5 分" in user.say("积分")
    assert "本月还没有人完成测试" in user.say("排行榜")  # practice never enters the month's board
    assert user.say("结束").startswith("练习结束")
    env.clock.advance(days=1)
    reply = user.say("练习")
    assert "积分 +1，今日 1/5" in user.say(correct_letters(env.store, reply))


def test_practice_by_category(env):
    user = member(env)
    reply = user.say("练习 党纪")
    assert "（党纪）" in reply
    stem = reply.split("\n\n")[-1].splitlines()[1]
    from bot.store import Question

    with env.store.session() as db:
        assert db.exec(select(Question).where(Question.stem == stem)).one().category == "党纪"
    assert "没有「天文」类的题目" in user.say("练习 天文")


def test_challenge_streak_until_first_wrong_and_best(env):
    user = member(env)
    reply = user.say("挑战")
    assert "最佳纪录：0 题" in reply
    for _ in range(3):
        reply = user.say(correct_letters(env.store, reply))
    assert "已连续答对 3 题" in reply and "挑战第 4 题" in reply
    end = user.say(wrong_letters(env.store, reply))
    assert "挑战结束！本次连续答对 3 题，刷新了个人最佳纪录！" in end
    reply = user.say("挑战")
    assert "最佳纪录：3 题" in reply
    assert "本次连续答对 0 题，您的最佳纪录是 3 题" in user.say(wrong_letters(env.store, reply))
    assert points(env, "challenge:") == 3
    with env.store.session() as db:
        assert sorted(r.streak for r in db.exec(select(ChallengeRun)).all()) == [0, 3]


def test_wrong_answers_come_back_when_due_and_not_before(env):
    user = member(env)
    reply = user.say("练习")
    stem = reply.split("\n\n")[-1].splitlines()[1]
    user.say(wrong_letters(env.store, reply))
    user.say("结束")
    book = user.say("错题")
    assert "错题本共 1 题" in book and "今天没有到期的错题" in book
    assert "今天没有需要复习的错题" in user.say("复习")
    env.clock.advance(days=1)  # day-level learning step: back the next day
    reply = user.say("复习")
    assert "今天有 1 道错题需要复习" in reply and stem in reply
    done = user.say(correct_letters(env.store, reply))
    assert done.startswith("✅") and "今天的复习完成了" in done
    with env.store.session() as db:
        card = db.exec(select(ReviewCard)).one()
        first_due = card.due
    assert (first_due - env.clock()).days >= 1  # Good pushes it out further
    assert "今天没有需要复习的错题" in user.say("复习")
    # Keep answering it right when due: it leaves the book once stability passes 30 days.
    for _ in range(8):
        with env.store.session() as db:
            card = db.exec(select(ReviewCard)).one()
            if card.graduated_at:
                break
            env.clock.now = card.due
        reply = user.say("复习")
        user.say(correct_letters(env.store, reply))
    with env.store.session() as db:
        assert db.exec(select(ReviewCard)).one().graduated_at is not None
    assert "错题本是空的" in user.say("错题")


def test_review_daily_limit(tmp_path, clock):
    from tests.conftest import build_env

    env = build_env(tmp_path, clock, BRANCHBOT__REVIEW__DAILY_LIMIT="2")
    with env.client:
        user = member(env)
        reply = user.say("练习")
        for _ in range(4):
            reply = user.say(wrong_letters(env.store, reply))
        user.say("结束")
        env.clock.advance(days=1)
        reply = user.say("复习")
        assert "今天有 2 道错题需要复习" in reply
        reply = user.say(correct_letters(env.store, reply))
        user.say(correct_letters(env.store, reply))
        assert "达到每日上限" in user.say("复习")


def test_monthly_quiz_mistakes_enter_the_book(env):
    user = member(env)
    reply = user.say("答题")
    user.say(wrong_letters(env.store, reply))
    assert "错题本共 1 题" in user.say("错题")


def test_question_statistics_and_reports(env):
    users = [
        member(env, "o-li", "李明", "0002"),
        member(env, "o-zhao", "赵敏", "0003"),
        member(env, "o-qian", "钱进", "0004"),
    ]
    for user in users:  # everyone gets the same first monthly question wrong
        reply = user.say("答题")
        user.say(wrong_letters(env.store, reply))
    admin = member(env, "o-wu", "吴管理", "0021")
    stats = admin.say("题目统计")
    assert stats.startswith("最难的 10 道题") and "正确率 0%，作答 3 次" in stats
    assert "仅限管理员" in users[0].say("题目统计")
    assert "感谢反馈" in users[0].say("纠错 解析里的年份好像写错了")
    with env.store.session() as db:
        assert db.exec(select(QuestionReport)).one().text == "解析里的年份好像写错了"
    assert "李明" in admin.say("纠错列表") and "年份好像写错了" in admin.say("纠错列表")
    env.clock.advance(hours=2)
    assert "1 小时内" in users[0].say("纠错 迟到的反馈")
