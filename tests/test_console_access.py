"""Every console route refuses a logged-out client, a plain member (even one holding a
session, e.g. opened before a demotion) and a secretary of another branch, and a refused
request changes nothing. The route list is read from the app, so a new route without an
entry here fails this test."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select
from starlette.routing import Route

from bot.auth import open_session
from bot.outbox.campaigns import create_campaign
from bot.store import Member, Question
from bot.store.models import AuditEntry, Campaign, ConsoleUpload, Meeting, QuestionReport
from tests.support.console import client_for, csrf_of, member_named

ROSTER_ONE = (
    "姓名,手机号,支部,入党日期,角色,微信OpenID,企业微信账号\n王书记,13900000001,第一党支部,1999-07-01,书记,,wangshuji\n"
)
QUESTIONS = (
    "题型,题干,选项A,选项B,选项C,选项D,选项E,选项F,答案,解析,分类,来源,难度\n"
    "判断,党的最高理想和最终目标是实现共产主义。,,,,,,,对,党章总纲明确规定。,党章,《中国共产党章程》总纲,1\n"
)
PUBLIC = {"/console/welcome", "/console/login", "/console/oauth/start", "/console/oauth/callback"}


@pytest.fixture
def world(env):
    """Branch one's things: a scheduled notice, a meeting an hour away, a 纠错 report, and
    王书记's pending roster upload."""
    wang, li = member_named(env, "王书记"), member_named(env, "李明")
    now = env.clock()
    with env.store.session() as db:
        campaign = create_campaign(
            db,
            kind="broadcast",
            title="支部通知",
            text="第一支部的定时通知",
            member_ids=[li.id],
            now=now,
            branch_id=wang.branch_id,
            created_by=wang.id,
        )
        campaign.send_after = now + timedelta(days=1)
        meeting = Meeting(
            branch_id=wang.branch_id,
            type="主题党日",
            starts_at=now + timedelta(hours=1),
            place="第一支部活动室",
            topic="",
            created_at=now,
        )
        question = db.exec(select(Question)).first()
        report = QuestionReport(member_id=li.id, question_id=question.id, text="有误", at=now)
        db.add_all([campaign, meeting, report])
        db.flush()
        ids = {
            "campaign": campaign.id,
            "meeting": meeting.id,
            "question": question.id,
            "report": report.id,
            "member": li.id,
            "branch": wang.branch_id,
        }
    owner = client_for(env, "王书记")
    preview = owner.post(
        "/console/members/upload",
        data={"csrf": csrf_of(owner, "/console/members")},
        files={"file": ("名册.csv", ROSTER_ONE.encode(), "text/csv")},
    )
    ids["upload"] = int(re.search(r'name="upload" value="(\d+)"', preview.text).group(1))
    return ids


def requests(ids: dict) -> dict[tuple[str, str], dict]:
    """(method, route path) → the request to make, aimed at branch one's things."""
    b = ids["branch"]
    return {
        ("POST", "/console/logout"): {"path": "/console/logout"},
        ("GET", "/console/"): {"path": "/console/"},
        ("GET", "/console/members"): {"path": f"/console/members?branch={b}"},
        ("POST", "/console/members/upload"): {
            "path": "/console/members/upload",
            "file": ROSTER_ONE,
            "data": {"mark_missing": "1"},
        },
        ("POST", "/console/members/confirm"): {
            "path": "/console/members/confirm",
            "data": {"upload": str(ids["upload"]), "mark_missing": "1"},
        },
        ("POST", "/console/members/{member_id}/role"): {
            "path": f"/console/members/{ids['member']}/role",
            "data": {"role": "书记"},
        },
        ("GET", "/console/questions"): {"path": "/console/questions"},
        ("POST", "/console/questions/upload"): {"path": "/console/questions/upload", "file": QUESTIONS},
        ("POST", "/console/questions/confirm"): {
            "path": "/console/questions/confirm",
            "data": {"upload": str(ids["upload"])},
        },
        ("POST", "/console/questions/{question_id}/retire"): {"path": f"/console/questions/{ids['question']}/retire"},
        ("POST", "/console/questions/{question_id}/restore"): {"path": f"/console/questions/{ids['question']}/restore"},
        ("POST", "/console/questions/reports/{report_id}/handled"): {
            "path": f"/console/questions/reports/{ids['report']}/handled"
        },
        ("GET", "/console/notices"): {"path": "/console/notices"},
        ("POST", "/console/notices/preview"): {
            "path": "/console/notices/preview",
            "data": {"text": "通知", "branch": str(b)},
        },
        ("POST", "/console/notices/send"): {
            "path": "/console/notices/send",
            "data": {"text": "越权通知", "branch": str(b)},
        },
        ("GET", "/console/notices/{campaign_id}"): {"path": f"/console/notices/{ids['campaign']}"},
        ("POST", "/console/notices/{campaign_id}/withdraw"): {"path": f"/console/notices/{ids['campaign']}/withdraw"},
        ("GET", "/console/meetings"): {"path": "/console/meetings"},
        ("GET", "/console/meetings/{meeting_id}"): {"path": f"/console/meetings/{ids['meeting']}"},
        ("POST", "/console/meetings/{meeting_id}/code"): {"path": f"/console/meetings/{ids['meeting']}/code"},
        ("GET", "/console/exports"): {"path": "/console/exports"},
        ("GET", "/console/exports/{kind}.xlsx"): {"path": f"/console/exports/scores.xlsx?month=2026-11&branch={b}"},
        ("GET", "/console/calendar"): {"path": "/console/calendar"},
        ("GET", "/console/audit"): {"path": "/console/audit"},
    }


# Pages a secretary of another branch may open, showing their own branch only: the
# response must not mention branch one or its things.
SCOPED_FOR_OTHER_SECRETARY = {
    ("GET", "/console/"),
    ("GET", "/console/notices"),
    ("GET", "/console/meetings"),
    ("GET", "/console/exports"),
    ("POST", "/console/notices/preview"),
    ("POST", "/console/notices/send"),
}
BRANCH_ONE_WORDS = ("第一党支部", "李明", "第一支部的定时通知", "第一支部活动室")


def snapshot(env) -> tuple:
    with env.store.session() as db:
        return (
            sorted((m.id, m.role, m.status, m.name) for m in db.exec(select(Member)).all()),
            sorted((c.id, c.branch_id, c.cancelled_at) for c in db.exec(select(Campaign)).all()),
            sorted((q.id, q.active) for q in db.exec(select(Question)).all()),
            sorted((r.id, r.handled_at) for r in db.exec(select(QuestionReport)).all()),
            sorted((m.id, m.checkin_code) for m in db.exec(select(Meeting)).all()),
            sorted(u.id for u in db.exec(select(ConsoleUpload)).all()),
        )


def console_routes(env) -> set[tuple[str, str]]:
    found = set()
    for route in env.client.app.routes:
        if isinstance(route, Route) and route.path.startswith("/console") and route.path not in PUBLIC:
            found |= {(m, route.path) for m in route.methods if m != "HEAD"}
    return found


def call(client, method: str, spec: dict, csrf: str | None):
    if method == "GET":
        return client.get(spec["path"], follow_redirects=False)
    data = dict(spec.get("data", {}))
    if csrf is not None:
        data["csrf"] = csrf
    files = {"file": ("file.csv", spec["file"].encode(), "text/csv")} if "file" in spec else None
    return client.post(spec["path"], data=data, files=files, follow_redirects=False)


def test_every_route_is_listed(env, world):
    assert console_routes(env) == set(requests(world))


def test_logged_out_clients_are_refused_everywhere(env, world):
    stranger = client_for(env, None)
    before = snapshot(env)
    for (method, route), spec in requests(world).items():
        response = call(stranger, method, spec, csrf="anything")
        if method == "GET":
            assert response.status_code == 303 and response.headers["location"] == "/console/welcome", route
        else:
            assert response.status_code == 401, route
        assert snapshot(env) == before, route


def test_plain_members_are_refused_everywhere_even_with_a_session(env, world):
    li = member_named(env, "李明")
    before = snapshot(env)
    for (method, route), spec in requests(world).items():
        with env.store.session() as db:  # a session as if opened before a demotion
            opened = open_session(db, db.get(Member, li.id), env.clock())
        browser = client_for(env, None)
        browser.cookies.set("branchbot_console", opened.raw_id, path="/console")
        response = call(browser, method, spec, csrf=opened.csrf)
        assert response.status_code == 403 and "没有权限" in response.text, route
        assert snapshot(env) == before, route


def test_a_secretary_of_another_branch_is_refused_or_sees_only_their_own(env, world):
    sun = client_for(env, "孙书记")
    csrf = csrf_of(sun)
    before = snapshot(env)
    for (method, route), spec in requests(world).items():
        if route == "/console/logout":
            continue  # their own session: covered in test_console_login
        response = call(sun, method, spec, csrf=csrf)
        if (method, route) in SCOPED_FOR_OTHER_SECRETARY:
            assert response.status_code in (200, 303), route
            shown = response.text if response.status_code == 200 else sun.get(response.headers["location"]).text
            for word in BRANCH_ONE_WORDS:
                assert word not in shown, (route, word)
        else:
            assert response.status_code in (400, 403, 404, 422), (route, response.status_code)
        if route == "/console/notices/send":
            before = snapshot(env)  # it sent to their own branch: checked below
        assert snapshot(env) == before, route
    # What 孙书记 sent went to their own branch, never to branch one.
    own = member_named(env, "孙书记").branch_id
    with env.store.session() as db:
        sent = db.exec(select(Campaign).where(Campaign.text == "越权通知")).all()
        assert [c.branch_id for c in sent] == [own]


def test_posts_without_csrf_change_nothing(env, world):
    wu = client_for(env, "吴管理")
    wu.get("/console/")
    before = snapshot(env)
    with env.store.session() as db:
        audit_before = len(db.exec(select(AuditEntry)).all())
    for (method, route), spec in requests(world).items():
        if method != "POST":
            continue
        response = call(wu, method, spec, csrf=None)
        assert response.status_code == 403 and "安全校验码" in response.text, route
        assert snapshot(env) == before, route
    with env.store.session() as db:
        assert len(db.exec(select(AuditEntry)).all()) == audit_before


def test_a_chunked_form_body_without_length_is_capped_before_it_is_parsed(env):
    """No Content-Length (chunked): the 5 MB cap must hold while reading, not after the
    whole body has been parsed into memory, for logged-out clients as for any other."""
    from tests.support.console import client_for as _client_for

    def chunks():
        yield b"text="
        for _ in range(7):
            yield b"x" * (1024 * 1024)

    for who in (None, "王书记"):
        client = _client_for(env, who)
        response = client.post(
            "/console/notices/preview", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 413 and "过大" in response.text, (who, response.status_code)
