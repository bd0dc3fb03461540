"""绑定: binding a WeChat account to the roster, and every refusal."""

from __future__ import annotations

from sqlmodel import select

from bot.store import Member


def openid_of(env, name: str, tail: str) -> str | None:
    with env.store.session() as db:
        member = db.exec(select(Member).where(Member.name == name, Member.phone.endswith(tail))).one()
        return member.openid


def test_bind_success_then_already_bound(env):
    user = env.wechat("o-liming")
    reply = user.say("绑定 李明 0002")
    assert "绑定成功" in reply and "第一党支部" in reply
    assert openid_of(env, "李明", "0002") == "o-liming"
    assert "无需重复绑定" in user.say("绑定 李明 0002")


def test_full_width_and_extra_spaces_are_accepted(env):
    assert "绑定成功" in env.wechat("o-zm").say("绑定　 赵敏　０００３")


def test_guest_commands_ask_to_bind_first(env):
    for command in ("答题", "积分", "排行榜"):
        assert "请先绑定" in env.wechat("o-nobody").say(command)


def test_not_on_roster(env):
    reply = env.wechat("o-x").say("绑定 不存在 1234")
    assert "与支部名册不符" in reply and "不存在" not in reply  # the same words as wrong digits


def test_wrong_digits(env):
    reply = env.wechat("o-x").say("绑定 李明 9999")
    assert "与支部名册不符" in reply and "还可尝试 4 次" in reply
    assert openid_of(env, "李明", "0002") is None


def test_same_name_different_digits_binds_the_right_person(env):
    assert "第二党支部" in env.wechat("o-zw").say("绑定 张伟 5678")
    assert openid_of(env, "张伟", "5678") == "o-zw"
    assert openid_of(env, "张伟", "1234") is None


def test_ambiguous_name_and_digits(env):
    reply = env.wechat("o-lq").say("绑定 刘强 2222")
    assert "多位「刘强」" in reply and "书记" in reply


def test_already_bound_to_another_wechat(env):
    env.wechat("o-first").say("绑定 李明 0002")
    reply = env.wechat("o-second").say("绑定 李明 0002")
    assert "已绑定其他微信" in reply
    assert openid_of(env, "李明", "0002") == "o-first"


def test_usage_hint_on_bad_format(env):
    assert "绑定格式" in env.wechat("o-x").say("绑定 李明")
    assert "绑定格式" in env.wechat("o-x").say("绑定 李明 12")


def test_lockout_after_five_wrong_tries_in_an_hour(env):
    user = env.wechat("o-guess")
    for _ in range(5):
        user.say("绑定 李明 0000")
    reply = user.say("绑定 李明 0002")  # even the right digits are refused now
    assert "次数过多" in reply
    assert openid_of(env, "李明", "0002") is None
    env.clock.advance(minutes=61)
    assert "绑定成功" in user.say("绑定 李明 0002")
