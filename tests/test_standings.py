"""积分 and 排行榜 for each role, with ties broken by earlier completion; the maintained
aggregates behind them (quizzes/points.py) always equal the ledger and attempts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.store import Member, MemberTotal
from quizzes.points import award
from tests.conftest import DATA, correct_letters, load_roster, wrong_letters
from tests.support.ledger import assert_aggregates_match_the_ledger


def take_quiz(env, openid: str, name: str, tail: str, wrong: int = 0):
    user = env.wechat(openid)
    assert "绑定成功" in user.say(f"绑定 {name} {tail}")
    return finish_quiz(env, user, wrong)


def finish_quiz(env, user, wrong: int = 0):
    reply = user.say("答题")
    for number in range(10):
        reply = user.say(wrong_letters(env.store, reply) if number < wrong else correct_letters(env.store, reply))
    assert "本月测试完成" in reply
    return user


def test_points_show_month_total_and_rank(env):
    li = take_quiz(env, "o-li", "李明", "0002", wrong=1)
    reply = li.say("积分")
    assert "本月积分：90 分" in reply and "累计积分：90 分" in reply
    assert "本月测试：已完成，支部第 1 名" in reply
    env.clock.advance(minutes=5)
    take_quiz(env, "o-zhao", "赵敏", "0003")
    assert "支部第 2 名" in li.say("积分")


def test_points_before_any_quiz(env):
    user = env.wechat("o-qian")
    user.say("绑定 钱进 0004")
    reply = user.say("积分")
    assert "本月积分：0 分" in reply and "尚未完成" in reply


def test_member_sees_branch_top_and_own_position_ties_to_earlier(env):
    zhao = take_quiz(env, "o-zhao", "赵敏", "0003", wrong=2)  # 80, first
    env.clock.advance(minutes=10)
    li = take_quiz(env, "o-li", "李明", "0002", wrong=2)  # 80, later
    env.clock.advance(minutes=10)
    take_quiz(env, "o-zw", "张伟", "1234")  # 100
    env.clock.advance(minutes=10)
    take_quiz(env, "o-zhou", "周芳", "0012")  # another branch: must not appear
    board = li.say("排行榜")
    lines = board.splitlines()
    assert "第一党支部" in lines[0]
    assert lines[1:4] == ["1. 张伟 100 分", "2. 赵敏 80 分", "3. 李明 80 分"]
    assert "周芳" not in board
    assert "您排第 3 名，80 分（共 3 人）" in board
    assert "2. 赵敏 80 分" in zhao.say("排行榜 本月")
    assert "累计积分排行榜" in li.say("排行榜 总")


def test_secretary_sees_own_branch(env):
    take_quiz(env, "o-li", "李明", "0002")
    secretary = env.wechat("o-wang")
    secretary.say("绑定 王书记 0001")
    board = secretary.say("排行榜")
    assert "1. 李明 100 分" in board and "您暂未上榜" in board
    assert "参与率" in secretary.say("排行榜 支部")
    assert "各支部排名由管理员查看" in secretary.say("排行榜 支部")


def test_admin_sees_every_branch_and_branch_ranking(env):
    take_quiz(env, "o-li", "李明", "0002", wrong=1)
    take_quiz(env, "o-zhou", "周芳", "0012")
    admin = env.wechat("o-wu")
    admin.say("绑定 吴管理 0021")
    board = admin.say("排行榜")
    assert "全部支部" in board
    assert "1. 周芳（第二党支部） 100 分" in board and "2. 李明（第一党支部） 90 分" in board
    branches = admin.say("排行榜 支部")
    lines = branches.splitlines()
    # 第二党支部: 1 of 4 finished (25%); 第一党支部: 1 of 6 (17%); 机关党委: 0 of 1.
    assert lines[1].startswith("1. 第二党支部：参与率 25%（1/4），平均 100.0 分")
    assert lines[2].startswith("2. 第一党支部：参与率 17%（1/6），平均 90.0 分")
    assert lines[3].startswith("3. 机关党委：参与率 0%")


def test_leaderboard_usage_and_empty_board(env):
    user = env.wechat("o-li")
    user.say("绑定 李明 0002")
    assert "本月还没有人完成测试" in user.say("排行榜")
    assert "排行榜用法" in user.say("排行榜 周")


def test_unknown_text_suggests_close_commands(env):
    user = env.wechat("o-li")
    user.say("绑定 李明 0002")
    reply = user.say("排行")
    assert "排行榜" in reply and "帮助" in reply
    help_text = user.say("帮助")
    assert "答题" in help_text and "排行榜" in help_text and "绑定 姓名" not in help_text


# ---------------------------------------------------------------- maintained aggregates


def practise(user, env, correct: int, wrong: int = 0) -> None:
    reply = user.say("练习")
    for _ in range(correct):
        reply = user.say(correct_letters(env.store, reply))
        assert "积分 +1" in reply
    for _ in range(wrong):
        reply = user.say(wrong_letters(env.store, reply))
    assert user.say("结束").startswith("练习结束")


def member_id(env, phone: str) -> int:
    with env.store.session() as db:
        return db.exec(select(Member.id).where(Member.phone == phone)).one()


def test_aggregates_follow_quizzes_practice_challenges_months_and_a_transfer(env, tmp_path):
    li = take_quiz(env, "o-li", "李明", "0002", wrong=1)  # 90, 第一党支部
    env.clock.advance(minutes=3)
    zhou = take_quiz(env, "o-zhou", "周芳", "0012", wrong=3)  # 70, 第二党支部
    env.clock.advance(minutes=3)
    zhao = env.wechat("o-zhao")
    zhao.say("绑定 赵敏 0003")
    practise(zhao, env, correct=3, wrong=1)
    env.clock.advance(minutes=3)
    reply = li.say("挑战")
    for _ in range(2):
        env.clock.advance(seconds=20)
        reply = li.say(correct_letters(env.store, reply))
    assert "挑战结束" in li.say(wrong_letters(env.store, reply))
    qian = env.wechat("o-qian")
    qian.say("绑定 钱进 0004")
    practise(qian, env, correct=2)  # earned in 第一党支部
    assert_aggregates_match_the_ledger(env.store)
    # 钱进 moves to 第二党支部 by a roster import; December's points are earned there.
    moved = tmp_path / "moved.csv"
    moved.write_text(
        (DATA / "roster.csv")
        .read_text(encoding="utf-8")
        .replace("钱进,13900000004,第一党支部", "钱进,13900000004,第二党支部"),
        encoding="utf-8",
    )
    load_roster(env.store, moved)
    env.clock.set_local(2026, 12, 2, 9, 0)
    finish_quiz(env, zhou)  # 100
    env.clock.advance(minutes=1)
    finish_quiz(env, zhao, wrong=5)  # 50
    practise(qian, env, correct=1)
    assert_aggregates_match_the_ledger(env.store)
    # The replies read the aggregates: totals, this month, and the branch's all-time places.
    assert "本月积分：0 分" in li.say("积分") and "累计积分：92 分，支部第 1 名（共 3 人有积分）" in li.say("积分")
    mine = zhao.say("积分")
    assert "本月积分：50 分" in mine and "累计积分：53 分，支部第 2 名（共 3 人有积分）" in mine
    assert "累计积分：3 分，支部第 2 名（共 2 人有积分）" in qian.say(
        "积分"
    )  # only the point earned in 第二党支部 ranks there
    first = li.say("排行榜 总").splitlines()
    assert first[1:4] == ["1. 李明 92 分", "2. 赵敏 53 分", "3. 钱进 2 分"]  # points earned in 第一党支部 stay with it
    second = zhou.say("排行榜 总").splitlines()
    assert second[1:3] == ["1. 周芳 170 分", "2. 钱进 1 分"] and second[-1] == "您排第 1 名，170 分（共 2 人）。"


def test_all_time_ties_go_to_who_reached_the_total_first_then_the_lower_member_id(env):
    zhao = take_quiz(env, "o-zhao", "赵敏", "0003", wrong=2)  # 80, reached first
    env.clock.advance(minutes=10)
    li = take_quiz(env, "o-li", "李明", "0002", wrong=2)  # 80, reached later (though a lower member id)
    env.clock.advance(minutes=10)
    assert member_id(env, "13900000004") < member_id(env, "13900001234")  # 钱进, 张伟
    zw = take_quiz(env, "o-zw", "张伟", "1234", wrong=2)  # 80, at the same moment as 钱进 ...
    qian = take_quiz(env, "o-qian", "钱进", "0004", wrong=2)  # ... who has the lower member id
    board = li.say("排行榜 总").splitlines()
    assert board[1:5] == ["1. 赵敏 80 分", "2. 李明 80 分", "3. 钱进 80 分", "4. 张伟 80 分"]
    assert board[-1] == "您排第 2 名，80 分（共 4 人）。"
    assert qian.say("排行榜 总").splitlines()[-1] == "您排第 3 名，80 分（共 4 人）。"
    assert zw.say("排行榜 总").splitlines()[-1] == "您排第 4 名，80 分（共 4 人）。"
    assert "累计积分：80 分，支部第 3 名（共 4 人有积分）" in qian.say("积分")
    env.clock.advance(minutes=10)
    practise(li, env, correct=1)  # 81: ahead now
    board = zhao.say("排行榜 总").splitlines()
    assert board[1:3] == ["1. 李明 81 分", "2. 赵敏 80 分"] and board[-1] == "您排第 2 名，80 分（共 4 人）。"
    # A correction (a ledger entry like any other) that brings a total to 0 takes the member off the boards.
    with env.store.session() as db:
        award(db, member_id(env, "13900000002"), 1, -81, "correction:test", "2026-11", env.clock(), kind="correction")
    board = zhao.say("排行榜 总").splitlines()
    assert (
        board[1] == "1. 赵敏 80 分" and "李明" not in "".join(board) and board[-1] == "您排第 1 名，80 分（共 3 人）。"
    )
    assert li.say("排行榜 总").splitlines()[-1] == "您暂未上榜。"
    assert "累计积分：0 分\n" in li.say("积分") + "\n"
    assert_aggregates_match_the_ledger(env.store)


def test_admin_all_time_board_is_the_top_ten_of_every_branch_and_the_admins_place(env, tmp_path):
    roster = tmp_path / "third.csv"
    roster.write_text(
        "姓名,手机号,支部,入党日期,角色,微信OpenID,企业微信账号\n"
        + "".join(f"队员{i:02d},137000000{i:02d},第三党支部,2015-07-01,党员,o-t{i:02d},\n" for i in range(1, 13)),
        encoding="utf-8",
    )
    load_roster(env.store, roster)
    for i in range(1, 13):  # one point each, a minute apart: earlier is ahead
        practise(env.wechat(f"o-t{i:02d}"), env, correct=2 if i == 5 else 1)
        env.clock.advance(minutes=1)
    admin = env.wechat("o-wu")
    admin.say("绑定 吴管理 0021")
    assert admin.say("排行榜 总").splitlines()[-1] == "您暂未上榜。"
    practise(admin, env, correct=1)
    board = admin.say("排行榜 总").splitlines()
    assert board[0] == "📊 累计积分排行榜（全部支部）"
    assert board[1:4] == [
        "1. 队员05（第三党支部） 2 分",
        "2. 队员01（第三党支部） 1 分",
        "3. 队员02（第三党支部） 1 分",
    ]
    assert len(board) == 12 and board[10] == "10. 队员10（第三党支部） 1 分"
    assert board[11] == "您排第 13 名，1 分（共 13 人）。"
    own = env.wechat("o-t12").say("排行榜 总").splitlines()
    assert own[0] == "📊 累计积分排行榜（第三党支部）" and own[-1] == "您排第 12 名，1 分（共 12 人）。"
    assert_aggregates_match_the_ledger(env.store)


def test_admin_month_board_and_branch_figures_come_from_the_aggregates(env):
    take_quiz(env, "o-li", "李明", "0002", wrong=1)  # 90
    env.clock.advance(minutes=1)
    take_quiz(env, "o-zhao", "赵敏", "0003", wrong=4)  # 60
    env.clock.advance(minutes=1)
    take_quiz(env, "o-zhou", "周芳", "0012")  # 100
    env.clock.advance(minutes=1)
    admin = take_quiz(env, "o-wu", "吴管理", "0021", wrong=3)  # 70
    board = admin.say("排行榜").splitlines()
    assert board[1:5] == [
        "1. 周芳（第二党支部） 100 分",
        "2. 李明（第一党支部） 90 分",
        "3. 吴管理（机关党委） 70 分",
        "4. 赵敏（第一党支部） 60 分",
    ]
    assert board[-1] == "您排第 3 名，70 分（共 4 人）。"
    lines = admin.say("排行榜 支部").splitlines()
    # 机关党委 1/1 (100%), 第二党支部 1/4 (25%), 第一党支部 2/6 (33%), average (90 + 60) / 2.
    assert lines[1].startswith("1. 机关党委：参与率 100%（1/1），平均 70.0 分")
    assert lines[2].startswith("2. 第一党支部：参与率 33%（2/6），平均 75.0 分")
    assert lines[3].startswith("3. 第二党支部：参与率 25%（1/4），平均 100.0 分")
    assert_aggregates_match_the_ledger(env.store)


def test_an_award_rolled_back_leaves_no_total_behind(env):
    li = env.wechat("o-li")
    li.say("绑定 李明 0002")
    practise(li, env, correct=1)
    at = env.clock() + timedelta(minutes=1)
    try:
        with env.store.session() as db:
            award(db, member_id(env, "13900000002"), 1, 5, "correction:test", "2026-11", at, kind="correction")
            raise RuntimeError("the reply failed after the award")
    except RuntimeError:
        pass
    assert "累计积分：1 分" in li.say("积分")
    assert_aggregates_match_the_ledger(env.store)


def test_concurrent_awards_to_one_member_lose_nothing(env):
    """Many sessions awarding the same member at once (several processes on PostgreSQL):
    the upsert adds in the database, so no update is lost and the first insert cannot collide."""
    li = member_id(env, "13900000002")
    start = datetime(2026, 11, 10, 1, 0, tzinfo=UTC)

    def burst(worker: int) -> None:
        for i in range(15):
            with env.store.session() as db:
                award(db, li, 1, 1, f"practice:{worker}", "2026-11", start + timedelta(seconds=worker * 100 + i))

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(burst, range(6)))
    with env.store.session() as db:
        total = db.get(MemberTotal, li)
        assert total is not None and total.points == 90
        assert total.reached_at == start + timedelta(seconds=514)
    assert_aggregates_match_the_ledger(env.store)
