"""The jobs, once-only runs and catch-up (the calendar facts they rely on: test_calendar.py)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlmodel import select

from bot.store import Member
from bot.store.models import Campaign, Delivery, JobRun
from scheduler.dates import anniversary_years, birthday_lines, nth_weekday, short_weekday_name, weekday_name
from scheduler.runner import JobRunner
from tests.conftest import SHANGHAI, build_env


def test_political_birthday_rules():
    assert anniversary_years(date(2001, 7, 1), date(2026, 7, 1)) == 25
    assert anniversary_years(date(2001, 7, 1), date(2026, 7, 2)) is None
    assert anniversary_years(date(2016, 2, 29), date(2027, 2, 28)) == 11  # common year: greeted on 28 February
    assert anniversary_years(date(2016, 2, 29), date(2028, 2, 28)) is None
    assert anniversary_years(date(2016, 2, 29), date(2028, 2, 29)) == 12
    assert anniversary_years(date(2026, 7, 1), date(2026, 7, 1)) is None
    assert nth_weekday(2026, 12, 5, 1) == date(2026, 12, 4)
    assert nth_weekday(2026, 12, 5, -1) == date(2026, 12, 25)


def test_a_months_birthday_list_is_one_rule_for_生日_and_the_digest():
    """handlers.followup.birthdays and scheduler.jobs.birthday_digest both list through here."""
    people = [
        Member(name="王五", phone="13800000001", branch_id=1, joined_on=date(2001, 2, 20)),
        Member(name="闰日", phone="13800000002", branch_id=1, joined_on=date(2016, 2, 29)),
        Member(name="李四", phone="13800000003", branch_id=1, joined_on=date(1999, 2, 3)),
        Member(name="新同志", phone="13800000004", branch_id=1, joined_on=date(2027, 2, 1)),  # joined this year
        Member(name="七月", phone="13800000005", branch_id=1, joined_on=date(2001, 7, 1)),
        Member(name="未填", phone="13800000006", branch_id=1, joined_on=None),
    ]
    assert birthday_lines(people, 2027, 2) == [
        "2月3日 李四（入党 28 周年）",
        "2月20日 王五（入党 26 周年）",
        "2月28日 闰日（入党 11 周年）",  # a 29 February join is greeted on the 28th in a common year
    ]
    assert birthday_lines(people, 2028, 2)[-1] == "2月29日 闰日（入党 12 周年）"
    assert birthday_lines(people, 2027, 3) == []


def test_weekday_names_in_sentences_and_in_tables():
    assert weekday_name(date(2026, 12, 2)) == "星期三" and short_weekday_name(date(2026, 12, 6)) == "周日"


@pytest.fixture
def jobs(tmp_path, clock, database_url):
    env = build_env(
        tmp_path,
        clock,
        database_url=database_url,
        BRANCHBOT__MEETINGS='[{"type": "主题党日", "weekday": 5, "nth": 1, "time": "15:00", "place": "三楼会议室"}]',
        BRANCHBOT__SCHEDULER__MISFIRE_GRACE='{"monthly_quiz": 7200}',
    )
    runner = JobRunner(env.store, env.config, env.clock)
    yield env, runner
    env.store.dispose()


def campaigns(env, kind: str) -> list[Campaign]:
    with env.store.session() as db:
        return list(db.exec(select(Campaign).where(Campaign.kind == kind)).all())


def test_missed_monthly_quiz_catches_up_once(jobs):
    env, runner = jobs
    env.clock.set_local(2026, 12, 1, 10, 30)  # the 09:00 run was missed while down
    ran = [r.job for r in runner.catch_up()]
    assert "monthly_quiz" in ran
    first = campaigns(env, "monthly_quiz")
    assert len(first) == 3  # one per branch
    assert "回复“答题”开始" in first[0].text
    assert runner.catch_up() == []  # a restart does not run it again
    assert [r.job for r in JobRunner(env.store, env.config, env.clock).catch_up()] == []  # nor does another instance
    assert len(campaigns(env, "monthly_quiz")) == 3
    with env.store.session() as db:
        assert len(db.exec(select(Delivery).where(Delivery.campaign_id.in_([c.id for c in first]))).all()) == 11


def test_missed_run_beyond_its_grace_is_not_caught_up(jobs):
    env, runner = jobs
    env.clock.set_local(2026, 12, 1, 12, 0)  # three hours late, grace is two
    assert "monthly_quiz" not in [r.job for r in runner.catch_up()]


def test_runs_missed_beyond_their_grace_are_recorded_once_and_shown_in_metrics(jobs):
    env, runner = jobs

    def missed() -> dict[str, int]:
        with env.store.session() as db:
            rows = db.exec(select(JobRun.job).where(JobRun.status == "missed")).all()
        return {job: rows.count(job) for job in sorted(set(rows))}

    env.clock.set_local(2026, 11, 1, 10, 0)  # first start-up: what came before it is not a miss
    assert "monthly_quiz" in [r.job for r in runner.catch_up()]
    assert missed() == {}
    env.clock.set_local(2026, 12, 1, 12, 0)  # down from 1 November to three hours after the quiz's time
    ran = [r.job for r in runner.catch_up()]
    assert "monthly_quiz" not in ran and "birthday_greetings" in ran  # its 08:30 is within six hours
    assert missed() == {
        "monthly_quiz": 1,  # 1 December 09:00, grace two hours
        "birthday_greetings": 29,
        "holiday_reminder": 29,  # 2–30 November, each day once
        "quiz_reminder": 1,
        "meeting_reminder": 1,
        "integrity_reminder": 1,  # never ran: only their latest time counts
        "housekeeping": 1,
    }
    with env.store.session() as db:
        quiz = db.exec(select(JobRun).where(JobRun.job == "monthly_quiz", JobRun.status == "missed")).one()
    assert quiz.scheduled_for == datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
    assert runner.last_run("monthly_quiz").scheduled_for == datetime(2026, 11, 1, 9, 0, tzinfo=SHANGHAI)
    assert runner.misses("monthly_quiz") == (1, datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI))
    assert campaigns(env, "monthly_quiz") and all(
        c.created_at < quiz.scheduled_for for c in campaigns(env, "monthly_quiz")
    )
    before = missed()
    assert runner.catch_up() == [] and JobRunner(env.store, env.config, env.clock).catch_up() == []
    assert missed() == before  # a restart, or another instance, counts nothing twice

    metrics = env.client.get("/metrics").text
    assert 'branchbot_job_runs{job="monthly_quiz",status="missed"} 1.0' in metrics
    assert 'branchbot_job_runs{job="birthday_greetings",status="missed"} 29.0' in metrics
    assert 'branchbot_job_runs{job="birthday_digest",status="missed"} 0.0' in metrics
    assert 'branchbot_job_runs{job="monthly_quiz",status="done"} 1.0' in metrics

    # The operator publishes the missed quiz by hand: it runs once and counts as done.
    assert runner.run("monthly_quiz", datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)).ran
    assert runner.run("monthly_quiz", datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)).detail == "已运行过"
    assert len(campaigns(env, "monthly_quiz")) == 6  # three branches, November and December
    metrics = env.client.get("/metrics").text
    assert 'branchbot_job_runs{job="monthly_quiz",status="missed"} 0.0' in metrics
    assert 'branchbot_job_runs{job="monthly_quiz",status="done"} 2.0' in metrics


def test_manual_run_has_the_same_once_only_guarantee(jobs):
    env, runner = jobs
    when = datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
    assert runner.run("monthly_quiz", when).ran
    again = runner.run("monthly_quiz", when)
    assert not again.ran and again.detail == "已运行过"
    with env.store.session() as db:
        assert len(db.exec(select(JobRun)).all()) == 1


def test_quiz_reminder_goes_to_those_who_have_not_finished(jobs):
    _env, runner = jobs
    result = runner.run("quiz_reminder", datetime(2026, 11, 27, 19, 0, tzinfo=SHANGHAI))  # 3 days before month end
    assert "提醒 11 位" in result.detail
    assert runner.run("quiz_reminder", datetime(2026, 11, 20, 19, 0, tzinfo=SHANGHAI)).detail == "今天不是提醒日"


def test_holiday_reminder_on_the_planned_day(jobs):
    env, runner = jobs
    result = runner.run("holiday_reminder", datetime(2026, 9, 29, 9, 30, tzinfo=SHANGHAI))
    assert result.detail == "已发送：国庆"
    texts = {c.text for c in campaigns(env, "holiday")}
    assert len(texts) == 1
    [text] = texts
    assert text.startswith("国庆将至（10月1日 起放假）") and "八项规定" in text and "公款旅游" in text
    assert runner.run("holiday_reminder", datetime(2026, 9, 28, 9, 30, tzinfo=SHANGHAI)).detail == "今天没有节前提醒"
    new_year = runner.run("holiday_reminder", datetime(2026, 12, 30, 9, 30, tzinfo=SHANGHAI))
    assert new_year.detail == "已发送：元旦"  # next year's 元旦, from the fallback calendar


def test_political_birthday_greeting_and_monthly_list(jobs):
    env, runner = jobs
    result = runner.run("birthday_greetings", datetime(2027, 2, 28, 8, 30, tzinfo=SHANGHAI))  # 钱进 joined 2016-02-29
    assert result.detail == "问候 1 位党员"
    [greeting] = campaigns(env, "birthday")
    assert greeting.text.startswith("钱进同志：今天是您入党 11 周年的政治生日")
    digest = runner.run("birthday_digest", datetime(2026, 7, 1, 8, 30, tzinfo=SHANGHAI))
    assert digest.detail == "发送给 1 位书记"  # only 王书记 joined in July
    [july] = campaigns(env, "birthday_digest")
    assert july.text == "第一党支部本月政治生日（共 1 人）：\n7月1日 王书记（入党 27 周年）"
    runner.run("birthday_digest", datetime(2026, 12, 1, 8, 30, tzinfo=SHANGHAI))
    december = {c.id: c.text for c in campaigns(env, "birthday_digest") if c.id != july.id}
    with env.store.session() as db:
        readers = {
            db.get(Member, d.member_id).name: december[d.campaign_id]
            for d in db.exec(select(Delivery).where(Delivery.campaign_id.in_(list(december)))).all()
        }
    assert set(readers) == {"王书记", "孙书记"}  # each secretary sees only their own branch
    assert "12月1日 周芳（入党 16 周年）" in readers["孙书记"] and "12月1日 刘强（入党 15 周年）" in readers["孙书记"]
    assert readers["王书记"].endswith("12月1日 刘强（入党 13 周年）") and "周芳" not in readers["王书记"]


def test_oath_on_request(env):
    user = env.wechat("o-li")
    user.say("绑定 李明 0002")
    assert "永不叛党" in user.say("誓词")


def test_meeting_reminder_the_day_before(jobs):
    env, runner = jobs
    result = runner.run("meeting_reminder", datetime(2026, 12, 3, 18, 0, tzinfo=SHANGHAI))  # 12-04 is the first Friday
    assert result.detail == "已提醒：主题党日（3 个支部）"
    texts = {c.text for c in campaigns(env, "meeting")}
    assert texts == {
        "明天（12月4日 星期五）15:00 召开主题党日，地点：三楼会议室。请准时参加；如不能参加，请向支部书记请假。"
    }
    assert runner.run("meeting_reminder", datetime(2026, 12, 4, 18, 0, tzinfo=SHANGHAI)).detail == "明天没有例行会议"


def test_housekeeping_forgets_old_message_keys_but_not_recent_ones(jobs):
    from bot.store.models import BindAttempt, ProcessedMessage

    env, runner = jobs
    old_user, new_user = env.wechat("o-old"), env.wechat("o-new")
    env.clock.set_local(2026, 10, 1, 9, 0)
    assert old_user.post(old_user.text_request("绑定 李红梅 9999")).status_code == 200  # a failed binding attempt
    env.clock.set_local(2026, 11, 20, 9, 0)
    recent = new_user.text_request("帮助")
    first = new_user.reply_text(new_user.post(recent).text)
    assert env.count(ProcessedMessage) == 2 and env.count(BindAttempt) == 1
    result = runner.run("housekeeping", datetime(2026, 11, 21, 3, 30, tzinfo=SHANGHAI))  # keeps 30 days
    assert result.ran and "清理 1 条消息去重记录、1 条绑定尝试记录" in result.detail, result.detail
    assert env.count(BindAttempt) == 0
    with env.store.session() as db:
        (kept,) = db.exec(select(ProcessedMessage)).all()
    assert kept.created_at.astimezone(SHANGHAI).date() == date(2026, 11, 20)  # the recent one
    # A retry of the recent message is still answered from the record, not handled again.
    assert new_user.reply_text(new_user.post(recent).text) == first
    assert env.count(ProcessedMessage) == 1


def test_housekeeping_clears_a_backlog_over_several_nights(jobs, monkeypatch):
    import scheduler.jobs as job_module
    from bot.store.models import ProcessedMessage

    env, runner = jobs
    monkeypatch.setattr(job_module, "HOUSEKEEPING_BATCH", 2)
    user = env.wechat("o-backlog")
    env.clock.set_local(2026, 9, 1, 9, 0)
    for _ in range(3):
        assert user.post(user.text_request("帮助")).status_code == 200
    first = runner.run("housekeeping", datetime(2026, 11, 21, 3, 30, tzinfo=SHANGHAI))
    assert "清理 2 条" in first.detail and "其余的下次继续" in first.detail and env.count(ProcessedMessage) == 1
    second = runner.run("housekeeping", datetime(2026, 11, 22, 3, 30, tzinfo=SHANGHAI))
    assert "清理 1 条" in second.detail and "下次继续" not in second.detail and env.count(ProcessedMessage) == 0


def test_in_memory_sqlite_store_works():
    from sqlalchemy import text

    from bot.store import create_store

    store = create_store("sqlite://")
    with store.session() as db, store.session():
        assert db.execute(text("SELECT 1")).scalar() == 1
    store.dispose()
