"""branchbot export: real workbooks (headers, types, formats, frozen header) built from
data made through the webhook (a quiz) or, where chat features are someone else's, the
store (meetings, replies, campaigns and deliveries)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.cli import main
from bot.exports import ExportError, display_width, parse_month
from bot.outbox.campaigns import create_campaign
from bot.outbox.worker import OutboxWorker
from bot.store import Branch, Member
from bot.store.models import AuditEntry, Delivery, Meeting, MeetingReply
from tests.conftest import SHANGHAI, build_env, correct_letters, wrong_letters
from tests.support.fake_wechat_api import FakeWeChatApi, push_settings


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def cfg(env, tmp_path) -> Path:
    path = tmp_path / "export-config.toml"
    path.write_text(f'[database]\nurl = "{env.config.database.url}"\n', encoding="utf-8")
    return path


def export(capsys, cfg: Path, *args: str) -> tuple[int, str, str]:
    code = main(["export", *args, "--config", str(cfg)])
    out, err = capsys.readouterr()
    return code, out, err


def sheet_rows(path: Path) -> tuple[object, list[tuple]]:
    book = load_workbook(path)
    sheet = book.active
    return sheet, list(sheet.iter_rows(values_only=True))


def ids(env) -> dict[str, int]:
    with env.store.session() as db:
        members = {f"{m.name}{m.phone[-4:]}": m.id for m in db.exec(select(Member)).all()}
        branches = {b.name: b.id for b in db.exec(select(Branch)).all()}
    return members | branches


def take_quiz(env, openid: str, name: str, tail: str, wrong: set[int] = frozenset(), stop_after: int = 10) -> None:
    user = env.wechat(openid)
    assert "绑定成功" in user.say(f"绑定 {name} {tail}")
    reply = user.say("答题")
    for number in range(1, stop_after + 1):
        env.clock.advance(minutes=1)
        reply = user.say(wrong_letters(env.store, reply) if number in wrong else correct_letters(env.store, reply))


def test_scores_and_participation_after_a_quiz_through_the_webhook(env, cfg, tmp_path, capsys):
    take_quiz(env, "o-li", "李明", "0002", wrong={3, 7})  # finishes 8/10 at 09:10
    take_quiz(env, "o-zhao", "赵敏", "0003", stop_after=2)  # still answering
    env.clock.set_local(2026, 12, 1, 10, 0)

    out = tmp_path / "scores.xlsx"
    code, stdout, _ = export(capsys, cfg, "scores", "--month", "2026-11", "-o", str(out))
    assert code == 0 and "共 11 行" in stdout
    sheet, rows = sheet_rows(out)
    assert rows[0] == (
        "支部",
        "姓名",
        "角色",
        "状态",
        "是否完成",
        "得分",
        "答对题数",
        "完成时间",
        "本月积分",
        "累计积分",
    )
    assert sheet.freeze_panes == "A2" and sheet["A1"].font.bold
    li = next(r for r in rows if r[1] == "李明")
    assert rows[1] == li  # first of 第一党支部: the only finished attempt
    assert li[:7] == ("第一党支部", "李明", "党员", "在册", "是", 80, 8) and li[8:] == (80, 80)
    assert li[7] == datetime(2026, 11, 10, 9, 10)  # naive Shanghai time, a real datetime cell
    assert sheet.cell(row=2, column=8).is_date and "yyyy" in sheet.cell(row=2, column=8).number_format
    zhao = next(r for r in rows if r[1] == "赵敏")
    assert zhao[4:8] == ("未答完", None, None, None)
    assert [r[4] for r in rows[1:]].count("否") == 9
    # CJK counts double, so 第一党支部 (10) makes the 支部 column wider than the 角色 one.
    assert sheet.column_dimensions["A"].width == 12 and sheet.column_dimensions["C"].width == 8

    out = tmp_path / "participation.xlsx"
    assert export(capsys, cfg, "participation", "--month", "2026-11", "-o", str(out))[0] == 0
    sheet, rows = sheet_rows(out)
    assert rows[0] == ("支部", "党员人数", "已完成", "参与率", "平均分", "未绑定人数")
    # 第一党支部: 6 members, 王书记 and 李明 have 企业微信账号, 赵敏 bound her WeChat → 3 unbound.
    assert rows[1] == ("第一党支部", 6, 1, pytest.approx(1 / 6), 80.0, 3)
    assert rows[2] == ("第二党支部", 4, 0, 0, None, 4)
    assert rows[3] == ("机关党委", 1, 0, 0, None, 0) and rows[4][:3] == ("合计", 11, 1) and rows[4][5] == 7
    assert sheet["D2"].number_format == "0%" and isinstance(sheet["D2"].value, float)
    assert sheet.freeze_panes == "A2"

    # Only one branch, and the audit log has both exports.
    out = tmp_path / "one.xlsx"
    assert export(capsys, cfg, "scores", "--month", "2026-11", "--branch", "第二党支部", "-o", str(out))[0] == 0
    _, rows = sheet_rows(out)
    assert {r[0] for r in rows[1:]} == {"第二党支部"} and len(rows) == 5
    with env.store.session() as db:
        entries = db.exec(select(AuditEntry).where(AuditEntry.action == "导出").order_by(AuditEntry.id)).all()
    assert len(entries) == 3 and "scores.xlsx" in entries[0].detail and "第二党支部" in entries[2].detail


def test_attendance_lists_every_member_of_the_branch_per_meeting(env, cfg, tmp_path, capsys):
    n = ids(env)
    now = datetime.now(UTC)
    with env.store.session() as db:
        day = Meeting(
            branch_id=n["第一党支部"],
            type="主题党日",
            starts_at=local(2026, 11, 20, 15, 0),
            place="党员活动室",
            topic="学习党的二十届四中全会精神",
            created_at=now,
        )
        other = Meeting(
            branch_id=n["第二党支部"],
            type="支委会",
            starts_at=local(2026, 11, 30, 23, 30),
            place="会议室",
            topic="研究发展党员",
            created_at=now,
        )
        december = Meeting(
            branch_id=n["第一党支部"],
            type="党课",
            starts_at=local(2026, 12, 1, 0, 30),
            place="报告厅",
            topic="下月的党课",
            created_at=now,
        )
        db.add_all([day, other, december])
        db.flush()
        db.add_all(
            [
                MeetingReply(
                    meeting_id=day.id,
                    member_id=n["李明0002"],
                    answer="参加",
                    answered_at=now,
                    checked_in_at=local(2026, 11, 20, 14, 55),
                ),
                MeetingReply(meeting_id=day.id, member_id=n["赵敏0003"], answer="请假", reason="出差", answered_at=now),
                MeetingReply(
                    meeting_id=day.id, member_id=n["周芳0012"], answer="参加", answered_at=now
                ),  # from another branch
            ]
        )
    out = tmp_path / "scores.xlsx"
    code, _stdout, _ = export(capsys, cfg, "attendance", "--month", "2026-11", "-o", str(out))
    assert code == 0
    sheet, rows = sheet_rows(out)
    assert rows[0] == ("支部", "会议类型", "时间", "地点", "主题", "姓名", "回复", "请假理由", "签到时间")
    first = [r for r in rows[1:] if r[1] == "主题党日"]
    assert len(first) == 7  # six members of 第一党支部 plus 周芳, who replied
    assert first[0][:6] == (
        "第一党支部",
        "主题党日",
        datetime(2026, 11, 20, 15, 0),
        "党员活动室",
        "学习党的二十届四中全会精神",
        "王书记",
    )
    by_name = {r[5]: r for r in first}
    assert by_name["王书记"][6:] == ("未回复", None, None)
    assert by_name["李明"][6:] == ("参加", None, datetime(2026, 11, 20, 14, 55))
    assert by_name["赵敏"][6:8] == ("请假", "出差")
    assert by_name["周芳"][6] == "参加"
    late = [r for r in rows[1:] if r[1] == "支委会"]
    assert len(late) == 4 and late[0][2] == datetime(2026, 11, 30, 23, 30)  # local evening, still November
    assert all(r[1] != "党课" for r in rows[1:])
    assert sheet["C2"].is_date and sheet["I3"].is_date and sheet.freeze_panes == "A2"

    out = tmp_path / "attendance-2.xlsx"
    assert export(capsys, cfg, "attendance", "--month", "2026-11", "--branch", "第二党支部", "-o", str(out))[0] == 0
    assert {r[0] for r in sheet_rows(out)[1][1:]} == {"第二党支部"}


def test_deliveries_in_plain_chinese_with_reasons(env, cfg, tmp_path, capsys):
    n = ids(env)
    people = ["李明0002", "赵敏0003", "钱进0004", "周芳0012", "王书记0001"]
    with env.store.session() as db:
        october = create_campaign(
            db,
            kind="broadcast",
            title="十月通知",
            text="旧通知",
            member_ids=[n["李明0002"]],
            now=local(2026, 10, 31, 23, 0),
        )
        campaign = create_campaign(
            db,
            kind="broadcast",
            title="支部通知",
            text="周五下午三点集中学习。",
            member_ids=[n[p] for p in people],
            now=local(2026, 11, 1, 0, 30),
        )
        campaign.branch_id, campaign.robot_status = n["第一党支部"], "failed 45009"
        db.add(campaign)
        updated = local(2026, 11, 1, 0, 31)
        outcomes = {
            "李明0002": ("sent", "wecom", None, ""),
            "赵敏0003": ("inbox", "inbox", 45015, "response out of time limit"),
            "钱进0004": ("failed", "wecom", 81013, "invaliduser"),
            "周芳0012": ("skipped", "", None, "未绑定"),
            "王书记0001": ("failed", "wechat_kf", 99999, "something new"),
        }
        for who, (status, via, code, msg) in outcomes.items():
            delivery = db.exec(
                select(Delivery).where(Delivery.campaign_id == campaign.id, Delivery.member_id == n[who])
            ).one()
            delivery.status, delivery.via, delivery.errcode, delivery.errmsg, delivery.updated_at = (
                status,
                via,
                code,
                msg,
                updated,
            )
            db.add(delivery)
        campaign_id, october_id = campaign.id, october.id
    out = tmp_path / "deliveries.xlsx"
    assert export(capsys, cfg, "deliveries", "--month", "2026-11", "-o", str(out))[0] == 0
    sheet, rows = sheet_rows(out)
    assert rows[0] == (
        "推送编号",
        "类型",
        "标题",
        "内容",
        "创建时间",
        "支部",
        "姓名",
        "状态",
        "渠道",
        "失败原因",
        "更新时间",
    )
    assert all(r[0] == campaign_id for r in rows[1:]) and october_id not in [r[0] for r in rows[1:]]
    by_name = {r[6]: r for r in rows[1:]}
    assert by_name["李明"][1:] == (
        "支部通知",
        "支部通知",
        "周五下午三点集中学习。",
        datetime(2026, 11, 1, 0, 30),
        "第一党支部",
        "李明",
        "已发送",
        "企业微信",
        None,
        datetime(2026, 11, 1, 0, 31),
    )
    assert by_name["赵敏"][7:10] == ("待阅读", "未读通知", "45015 超过 48 小时未互动")
    assert by_name["钱进"][7:10] == ("失败", "企业微信", "81013 企业微信账号无效")
    assert by_name["周芳"][7:10] == ("跳过", None, "未绑定")
    assert by_name["王书记"][9] == "99999 something new"
    assert by_name["（群机器人）"][7:10] == ("失败", "群机器人", "45009 接口调用超过频率限制")
    assert sheet["E2"].is_date and sheet["K2"].is_date

    out = tmp_path / "deliveries-2.xlsx"
    assert export(capsys, cfg, "deliveries", "--month", "2026-11", "--branch", "第二党支部", "-o", str(out))[0] == 0
    assert [r[6] for r in sheet_rows(out)[1][1:]] == ["周芳"]


def test_meeting_and_notice_sent_through_chat_and_the_outbox(tmp_path, clock, capsys):
    """The real paths end to end: a secretary arranges a meeting and sends a notice in
    chat, members reply and check in, the outbox sends against a fake WeChat/WeCom API."""
    with FakeWeChatApi() as api:
        env = build_env(tmp_path, clock, **push_settings(api))
        cfg = tmp_path / "e2e.toml"
        cfg.write_text(f'[database]\nurl = "{env.config.database.url}"\n', encoding="utf-8")
        with env.client:
            wang, li, zhao = (env.wechat(openid) for openid in ("o-wang", "o-li", "o-zhao"))
            for user, who in ((wang, "王书记 0001"), (li, "李明 0002"), (zhao, "赵敏 0003")):
                assert "绑定成功" in user.say(f"绑定 {who}")
            api.state.invalid_users.add("liming")  # 李明 is on WeCom with an invalid account
            for text in ("会议", "5", "2026-11-13 15:00", "三楼会议室", "学习党的二十届四中全会精神", "确认"):
                wang.say(text)
            li.say("参加")
            zhao.say("请假 出差")
            env.clock.set_local(2026, 11, 13, 14, 55)
            code = wang.say("签到码").split("签到码：")[1][:4]
            assert li.say(f"签到 {code}").startswith("签到成功")
            wang.say("通知 周五学习")
            wang.say("确认")
            worker = OutboxWorker(env.store, env.config, env.clock)
            worker.drain(max_seconds=20)
            worker.stop()
        env.store.dispose()

    out = tmp_path / "scores.xlsx"
    assert export(capsys, cfg, "attendance", "--month", "2026-11", "-o", str(out))[0] == 0
    _, rows = sheet_rows(out)
    by_name = {r[5]: r for r in rows[1:]}
    assert len(by_name) == 6 and by_name["李明"][:5] == (
        "第一党支部",
        "主题党日",
        datetime(2026, 11, 13, 15, 0),
        "三楼会议室",
        "学习党的二十届四中全会精神",
    )
    assert by_name["李明"][6:] == ("参加", None, datetime(2026, 11, 13, 14, 55))
    assert by_name["赵敏"][6:8] == ("请假", "出差") and by_name["钱进"][6] == "未回复"

    out = tmp_path / "deliveries.xlsx"
    assert export(capsys, cfg, "deliveries", "--month", "2026-11", "-o", str(out))[0] == 0
    _, rows = sheet_rows(out)
    notice = {r[6]: r for r in rows[1:] if r[1] == "支部通知"}
    assert notice["王书记"][3] == "周五学习" and notice["王书记"][7:9] == ("已发送", "企业微信")
    assert notice["李明"][7:10] == ("失败", "企业微信", "81013 企业微信账号无效")
    assert notice["赵敏"][7:9] == ("已发送", "公众号客服消息")
    assert notice["张伟"][7:10] == ("跳过", None, "未绑定")
    assert {r[1] for r in rows[1:]} == {"会议通知", "支部通知"}


def test_bad_month_branch_or_file_is_a_usage_error(env, cfg, tmp_path, capsys):
    for month in ("2026-13", "2026-00", "11-2026", "abc"):
        code, _, err = export(capsys, cfg, "scores", "--month", month, "-o", str(tmp_path / "x.xlsx"))
        assert code == 2 and f"--month「{month}」不是有效月份" in err and "YYYY-MM" in err
    code, _, err = export(
        capsys, cfg, "scores", "--month", "2026-11", "--branch", "第九党支部", "-o", str(tmp_path / "x.xlsx")
    )
    assert code == 2 and "没有名为「第九党支部」的支部" in err
    code, _, err = export(capsys, cfg, "scores", "--month", "2026-11", "-o", str(tmp_path / "x.csv"))
    assert code == 2 and ".xlsx" in err
    code, _, err = export(capsys, cfg, "scores", "--month", "2026-11", "-o", str(tmp_path / "no" / "x.xlsx"))
    assert code == 2 and "不存在" in err
    assert not (tmp_path / "x.xlsx").exists()
    with env.store.session() as db:
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "导出")).all() == []


def test_empty_month_gives_a_header_only_workbook(env, cfg, tmp_path, capsys):
    out = tmp_path / "empty.xlsx"
    code, stdout, _ = export(capsys, cfg, "attendance", "--month", "2030-01", "-o", str(out))
    assert code == 0 and "只有表头" in stdout
    sheet, rows = sheet_rows(out)
    assert len(rows) == 1 and rows[0][0] == "支部" and sheet.freeze_panes == "A2"


def test_month_parsing_and_widths():
    assert parse_month("2026-1") == "2026-01" and parse_month("2026年11月") == "2026-11"
    with pytest.raises(ExportError):
        parse_month("2026-13")
    assert display_width("第一党支部") == 10 and display_width("abc") == 3 and display_width("ＡＢ") == 4
    assert display_width(datetime(2026, 1, 1)) == 16


def test_formula_like_text_is_exported_as_text(env, cfg, tmp_path, capsys):
    """A name stored before the importer refused such text must not become a live formula."""
    with env.store.session() as db:
        member = db.exec(select(Member).order_by(Member.id)).first()
        member.name = '=HYPERLINK("http://x","点我")'
        db.add(member)
    out = tmp_path / "scores.xlsx"
    code, _, _ = export(capsys, cfg, "scores", "-o", str(out))
    assert code == 0
    sheet, _rows = sheet_rows(out)
    cells = [cell for row in sheet.iter_rows() for cell in row if cell.value == '=HYPERLINK("http://x","点我")']
    assert cells and all(cell.data_type == "s" for cell in cells)
