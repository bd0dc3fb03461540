"""概览: the numbers behind the charts, for an admin (every branch, sorted) and a
secretary (own branch against the committee average, no other names)."""

from __future__ import annotations

import json
import re

from sqlmodel import select

from bot.outbox.campaigns import create_campaign
from bot.store import Attempt, Paper
from bot.store.models import Delivery
from quizzes.points import attempt_finished
from tests.support.console import client_for, member_named


def finish(env, name: str, tail: str, score: int, month: str = "2026-11") -> None:
    member = member_named(env, name, tail)
    with env.store.session() as db:
        paper = db.exec(select(Paper).where(Paper.branch_id == member.branch_id, Paper.month == month)).first()
        if paper is None:
            paper = Paper(branch_id=member.branch_id, month=month, question_ids=[], created_at=env.clock())
            db.add(paper)
            db.flush()
        db.add(
            Attempt(
                member_id=member.id,
                paper_id=paper.id,
                branch_id=member.branch_id,
                month=month,
                option_orders={},
                score=score,
                correct=score // 10,
                started_at=env.clock(),
                finished_at=env.clock(),
            )
        )
        attempt_finished(db, month, member.branch_id, score)


def charts(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page, re.S).group(1))


def test_admin_sees_every_branch_sorted_and_secretary_only_own_against_average(env):
    finish(env, "周芳", "0012", 90)  # 第二党支部: 1 of 4 → 25 %
    finish(env, "李明", "0002", 80)  # 第一党支部: 2 of 6 → 33.3 %
    finish(env, "赵敏", "0003", 60)
    finish(env, "李明", "0002", 100, month="2026-10")
    li = member_named(env, "李明")
    with env.store.session() as db:
        campaign = create_campaign(
            db, kind="broadcast", text="x", member_ids=[li.id], now=env.clock(), branch_id=li.branch_id
        )
        delivery = db.exec(select(Delivery).where(Delivery.campaign_id == campaign.id)).one()
        delivery.status, delivery.errcode, delivery.updated_at = "failed", 81013, env.clock()
        db.add(delivery)
    admin = charts(page := client_for(env, "吴管理").get("/console/").text)
    assert admin["bars"]["names"] == ["第一党支部", "第二党支部", "机关党委"]
    assert admin["bars"]["participation"] == [33.3, 25.0, 0.0]
    assert admin["bars"]["average"] == [70.0, 90.0, 0.0]
    assert admin["trend"]["months"][-2:] == ["2026-10", "2026-11"]
    assert admin["trend"]["series"][0]["data"][-2:] == [9.1, 27.3]  # 1 and 3 of 11 members
    assert dict(zip(admin["scores"]["scores"], admin["scores"]["counts"]))["60"] == 1
    assert "本月发送失败（1 条）" in page and "企业微信账号无效" in page
    secretary_page = client_for(env, "王书记").get("/console/").text
    secretary = charts(secretary_page)
    assert secretary["bars"]["names"] == ["本支部", "全委平均"]
    assert secretary["bars"]["participation"] == [33.3, 27.3]
    assert [s["name"] for s in secretary["trend"]["series"]] == ["本支部", "全委平均"]
    assert sum(secretary["scores"]["counts"]) == 2  # own branch's finishers only
    assert "第二党支部" not in secretary_page and "机关党委" not in secretary_page and "周芳" not in secretary_page
    other = client_for(env, "孙书记").get("/console/").text
    assert "李明" not in other and "本月发送失败（0 条）" in other


def test_scripts_are_vendored_and_served_with_their_licences(env):
    """No CDN: every script and stylesheet comes from the console's own static folder."""
    from bot.console.web import HERE

    page = client_for(env, "王书记").get("/console/").text
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/console/static/") for s in sources), sources
    for source in sources:
        assert env.client.get(source).status_code == 200, source
    static = HERE / "static"
    for licence in ("echarts.LICENSE.txt", "echarts.NOTICE.txt", "htmx.LICENSE.txt"):
        assert (static / licence).stat().st_size > 100
    assert "Apache License" in (static / "echarts.LICENSE.txt").read_text()
    templates = HERE / "templates"
    assert not any("//" in src for t in templates.glob("*.html") for src in re.findall(r'src="([^"]+)"', t.read_text()))
