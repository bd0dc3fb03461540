"""积分 and 排行榜 for each role, with ties broken by earlier completion."""

from __future__ import annotations

from tests.conftest import correct_letters, wrong_letters


def take_quiz(env, openid: str, name: str, tail: str, wrong: int = 0):
    user = env.wechat(openid)
    assert "绑定成功" in user.say(f"绑定 {name} {tail}")
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
