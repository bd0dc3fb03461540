"""Attempt limits on guessable secrets that rotating senders or fast typing could find:
a roster entry's phone tail (绑定) and a meeting's check-in code (签到)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.cli import main
from bot.store import Member
from bot.store.models import AuditEntry, Campaign, Delivery, Meeting

ENTRY_LIMIT = 10


def member(env, name: str, phone_tail: str = "") -> Member:
    with env.store.session() as db:
        return next(m for m in db.exec(select(Member).where(Member.name == name)).all() if m.phone.endswith(phone_tail))


def lock_notices(env) -> list[tuple[str, list[str]]]:
    with env.store.session() as db:
        found = []
        for campaign in db.exec(select(Campaign).where(Campaign.kind == "bind_lock").order_by(Campaign.id)).all():
            names = db.exec(
                select(Member.name)
                .join(Delivery, Delivery.member_id == Member.id)
                .where(Delivery.campaign_id == campaign.id)
                .order_by(Member.id)
            ).all()
            found.append((campaign.text, list(names)))
        return found


def guess(env, name: str, senders: range, tails=lambda i: f"{9000 + i:04d}") -> list[str]:
    """One wrong guess from each of many fresh accounts (each well under its own limit)."""
    return [env.wechat(f"o-guess-{name}-{i}").say(f"绑定 {name} {tails(i)}") for i in senders]


def without_count(reply: str) -> str:
    return reply.split("还可尝试")[0]


def test_guesses_from_many_accounts_lock_the_roster_entry_for_an_hour(env, tmp_path, capsys, no_env_overrides):
    env.clock.now = datetime.now(UTC).replace(microsecond=0)  # `members list` reads the real clock
    refusals = guess(env, "李明", range(ENTRY_LIMIT))
    stranger = env.wechat("o-stranger").say("绑定 名册外的人 1234")
    # "Not on the roster" and "wrong digits" read the same: the name is not confirmed.
    assert {without_count(r) for r in refusals + [stranger]} == {without_count(stranger)}
    assert "李明" not in stranger and "名册外的人" not in without_count(stranger)

    # Locked: even the right digits from the member's own phone are refused, with the same words.
    real = env.wechat("o-li-ming")
    said = real.say("绑定 李明 0002")
    assert "绑定成功" not in said and without_count(said) == without_count(stranger)
    assert member(env, "李明").openid is None

    # Audited once; the branch secretary is told through the outbox.
    with env.store.session() as db:
        audits = db.exec(select(AuditEntry).where(AuditEntry.action == "绑定锁定")).all()
    assert len(audits) == 1 and "李明" in audits[0].detail and "0002" not in audits[0].detail
    [(text, recipients)] = lock_notices(env)
    assert recipients == ["王书记"] and "李明" in text and "0002" not in text

    # The lock shows in `members list`.
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f'[database]\nurl = "{env.config.database.url}"\n', encoding="utf-8")
    assert main(["members", "list", "--branch", "第一党支部", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "李明" in line]
    assert "锁定" in line
    assert not any("锁定" in line for line in out.splitlines() if "赵敏" in line)

    # More guesses while locked neither extend the lock nor send another notice.
    guess(env, "李明", range(ENTRY_LIMIT, ENTRY_LIMIT + 5))
    assert len(lock_notices(env)) == 1
    env.clock.advance(hours=1, seconds=1)
    assert "绑定成功" in real.say("绑定 李明 0002")  # the real member after the hour


def test_nine_failures_do_not_lock(env):
    guess(env, "赵敏", range(ENTRY_LIMIT - 1))
    assert "绑定成功" in env.wechat("o-zhao").say("绑定 赵敏 0003")
    assert lock_notices(env) == []


def test_a_locked_secretary_entry_is_reported_to_the_admins(env):
    guess(env, "王书记", range(ENTRY_LIMIT))
    [(text, recipients)] = lock_notices(env)
    assert recipients == ["吴管理"] and "王书记" in text


def test_namesakes_each_count_the_guesses_against_their_name(env):
    """A wrong tail for 张伟 is a guess at both 张伟s: both entries lock, each branch's
    secretary hears about their own."""
    guess(env, "张伟", range(ENTRY_LIMIT))
    notices = lock_notices(env)
    assert sorted(recipients[0] for _, recipients in notices) == ["孙书记", "王书记"]
    env.clock.advance(hours=1, seconds=1)
    assert "绑定成功" in env.wechat("o-zhangwei").say("绑定 张伟 1234")


# ------------------------------------------------------------------ 签到


@pytest.fixture
def meeting_env(env):
    """王书记 and two members bound; a meeting starting in 10 minutes with a code."""
    for openid, text in (("o-wang", "绑定 王书记 0001"), ("o-li", "绑定 李明 0002"), ("o-zhao", "绑定 赵敏 0003")):
        assert "绑定成功" in env.wechat(openid).say(text)
    with env.store.session() as db:
        db.add(
            Meeting(
                branch_id=member(env, "王书记").branch_id,
                type="支部党员大会",
                starts_at=env.clock() + timedelta(minutes=10),
                place="三楼会议室",
                topic="学习党章",
                created_at=env.clock(),
            )
        )
    said = env.wechat("o-wang").say("签到码")
    code = said.split("签到码：")[1][:4]
    assert code.isdigit()
    return env, code


def test_five_wrong_check_in_codes_lock_the_member_out_of_that_meeting(meeting_env):
    env, code = meeting_env
    li = env.wechat("o-li")
    wrong = [f"{(int(code) + k) % 10_000:04d}" for k in range(1, 6)]
    replies = [li.say(f"签到 {w}") for w in wrong]
    assert all("签到码不正确" in r for r in replies[:4]) and "还可尝试 1 次" in replies[3]
    assert "签到码错误次数过多" in replies[4]
    said = li.say(f"签到 {code}")  # the right code, now refused
    assert "签到成功" not in said and "签到码错误次数过多" in said
    assert "签到成功" in env.wechat("o-zhao").say(f"签到 {code}")  # the limit is the member's own
    report = env.wechat("o-wang").say("会议情况")
    assert "已签到 1/" in report
    assert "签到码输错" in report and "李明 5 次（已停止签到）" in report


def test_wrong_codes_below_the_limit_still_allow_check_in(meeting_env):
    env, code = meeting_env
    li = env.wechat("o-li")
    for k in range(1, 5):
        li.say(f"签到 {(int(code) + k) % 10_000:04d}")
    assert "签到成功" in li.say(f"签到 {code}")
    assert "李明 4 次" in env.wechat("o-wang").say("会议情况")


def test_scanned_qr_codes_count_against_the_same_limit(meeting_env):
    """The 扫码签到 button's scan result is routed as a typed 签到: the limit holds there too."""
    from tests.conftest import scan_xml

    env, code = meeting_env
    li = env.wechat("o-li")

    def scan(result: str) -> str:
        env.clock.advance(seconds=1)
        response = li.post(li.sign(scan_xml("o-li", int(env.clock().timestamp()), result)))
        assert response.status_code == 200, response.text
        return li.reply_text(response.text)

    for k in range(1, 4):
        assert "签到码不正确" in li.say(f"签到 {(int(code) + k) % 10_000:04d}")  # three typed
    for k in range(4, 6):
        scan(f"签到 {(int(code) + k) % 10_000:04d}")  # two scanned
    said = scan(f"签到 {code}")
    assert "签到成功" not in said and "签到码错误次数过多" in said
    assert "李明 5 次（已停止签到）" in env.wechat("o-wang").say("会议情况")
