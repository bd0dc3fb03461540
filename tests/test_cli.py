"""The branchbot CLI: init, imports (all or nothing, errors by row and column), lists, chat, doctor."""

from __future__ import annotations

import csv
import io
import sys
from datetime import UTC, date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlmodel import select

from bot.cli import main
from bot.store import Member, Question, create_store
from tests.conftest import DATA

HEADER = ["题型", "题干", "选项A", "选项B", "选项C", "选项D", "选项E", "选项F", "答案", "解析", "分类", "来源", "难度"]


@pytest.fixture
def cfg(tmp_path, no_env_overrides) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///cli.db"\n[quiz]\nquestions_per_paper = 3\n', encoding="utf-8")
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def questions_in(cfg: Path) -> int:
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:
        return len(db.exec(select(Question)).all())


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([HEADER, *rows])
    return path


def test_init_demo_loads_bank_and_marked_roster(cfg, capsys):
    code, out, _ = run(capsys, "init", "--demo", "--config", str(cfg))
    assert code == 0 and "演示名册" in out
    assert questions_in(cfg) >= 60
    code, out, _ = run(capsys, "members", "list", "--config", str(cfg))
    assert code == 0 and "[演示]" in out and "演示第一党支部" in out
    # Running init again upgrades in place and duplicates nothing.
    before = questions_in(cfg)
    assert run(capsys, "init", "--demo", "--config", str(cfg))[0] == 0
    assert questions_in(cfg) == before


def test_commands_before_init_say_what_to_run(cfg, capsys):
    code, _, err = run(capsys, "members", "list", "--config", str(cfg))
    assert code == 2 and "branchbot init" in err


def test_bad_question_file_reports_row_and_column_and_imports_nothing(cfg, tmp_path, capsys):
    run(capsys, "init", "--config", str(cfg))
    before = questions_in(cfg)
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            ["单选", "一道正确的新题目？", "甲", "乙", "丙", "丁", "", "", "B", "解析", "党史", "来源", "1"],
            ["单选", "答案越界的题？", "甲", "乙", "丙", "丁", "", "", "E", "解析", "党史", "来源", "1"],
            ["多选", "多选只有一个答案？", "甲", "乙", "丙", "", "", "", "A", "解析", "党史", "来源", "2"],
            ["判断", "判断题答案不对？", "", "", "", "", "", "", "是的", "解析", "党史", "来源", "1"],
            ["问答", "未知题型？", "", "", "", "", "", "", "A", "解析", "党史", "来源", "1"],
            ["单选", "缺来源的题？", "甲", "乙", "", "", "", "", "A", "解析", "党史", "", "5"],
            ["单选", "一道正确的新题目？", "甲", "乙", "丙", "丁", "", "", "B", "解析", "党史", "来源", "1"],
        ],
    )
    code, _, err = run(capsys, "quiz", "import", str(bad), "--config", str(cfg))
    assert code == 1
    assert "bad.csv 第 3 行 I 列「答案」：答案中的 E 没有对应的选项" in err
    assert "bad.csv 第 4 行 I 列「答案」：多选题至少需要两个正确选项" in err
    assert "bad.csv 第 5 行 I 列「答案」：判断题的答案应为 对 或 错" in err
    assert "bad.csv 第 6 行 A 列「题型」" in err
    assert "bad.csv 第 7 行 L 列「来源」：来源不能为空" in err
    assert "bad.csv 第 7 行 M 列「难度」" in err
    assert "bad.csv 第 8 行 B 列「题干」：与第 2 行的题干重复" in err
    assert "未导入任何内容" in err
    assert questions_in(cfg) == before


def test_missing_header_is_reported(cfg, tmp_path, capsys):
    run(capsys, "init", "--config", str(cfg))
    path = tmp_path / "noheader.csv"
    path.write_text("题干,答案\n什么？,A\n", encoding="utf-8")
    code, _, err = run(capsys, "quiz", "validate", str(path), "--config", str(cfg))
    # 题型 may be left out (the type follows from the options and the answer); 来源 may not,
    # unless the command line gives one for the whole file
    assert code == 2 and "第 1 行：缺少表头「来源」" in err and "--source" in err


def test_xlsx_question_import_and_validate(cfg, tmp_path, capsys):
    run(capsys, "init", "--config", str(cfg))
    before = questions_in(cfg)
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(
        [
            "单选",
            "XLSX 导入的单选题？",
            "甲",
            "乙",
            "丙",
            None,
            None,
            None,
            "C",
            "解析",
            "党章",
            "《中国共产党章程》第一章第二条",
            2,
        ]
    )
    sheet.append(
        [
            "判断",
            "XLSX 导入的判断题。",
            None,
            None,
            None,
            None,
            None,
            None,
            "错",
            "解析",
            "党纪",
            "本支部学习资料（2026年）",
            1,
        ]
    )
    path = tmp_path / "bank.xlsx"
    book.save(path)
    code, out, _ = run(capsys, "quiz", "validate", str(path), "--config", str(cfg))
    assert code == 0 and "2 题全部有效" in out
    assert questions_in(cfg) == before  # validate imports nothing
    code, out, _ = run(capsys, "quiz", "import", str(path), "--config", str(cfg))
    assert code == 0 and "新增 2 题" in out
    assert questions_in(cfg) == before + 2
    code, out, _ = run(capsys, "quiz", "import", str(path), "--config", str(cfg))
    assert "无变化 2 题" in out


def test_bad_roster_reports_row_and_column_and_imports_nothing(cfg, tmp_path, capsys):
    run(capsys, "init", "--config", str(cfg))
    path = tmp_path / "roster.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(["姓名", "手机号", "支部", "入党日期", "角色"])
    sheet.append(["甲", "13900000001", "一支部", date(2001, 7, 1), "党员"])
    sheet.append(["乙", "1390000", "一支部", "2001-07-01", "党员"])
    sheet.append(["丙", "13900000003", "一支部", "2001-13-01", "队长"])
    sheet.append(["丁", "13900000001", "", "2001-07-01", "书记"])
    book.save(path)
    code, _, err = run(capsys, "members", "import", str(path), "--config", str(cfg))
    assert code == 1
    assert "roster.xlsx 第 3 行 B 列「手机号」" in err
    assert "roster.xlsx 第 4 行 D 列「入党日期」" in err
    assert "roster.xlsx 第 4 行 E 列「角色」" in err
    assert "roster.xlsx 第 5 行 C 列「支部」" in err
    assert "roster.xlsx 第 5 行 B 列「手机号」：与第 2 行重复" in err
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:
        assert db.exec(select(Member)).all() == []


def test_roster_reimport_updates_by_phone(cfg, tmp_path, capsys):
    run(capsys, "init", "--config", str(cfg))
    assert run(capsys, "members", "import", str(DATA / "roster.csv"), "--config", str(cfg))[0] == 0
    changed = tmp_path / "roster2.csv"
    text = (
        (DATA / "roster.csv")
        .read_text(encoding="utf-8")
        .replace("李明,13900000002,第一党支部", "李明,13900000002,第二党支部")
    )
    changed.write_text(text + "新同志,13700000000,第二党支部,2024-07-01,党员,,\n", encoding="utf-8")
    code, out, _ = run(capsys, "members", "import", str(changed), "--config", str(cfg))
    assert code == 0 and "新增 1 人，更新 1 人，无变化 10 人" in out


def test_chat_as_member_goes_through_the_router(cfg, capsys, monkeypatch):
    run(capsys, "init", "--demo", "--config", str(cfg))
    monkeypatch.setattr(sys, "stdin", io.StringIO("积分\n答题\n退出\n"))
    code, out, _ = run(capsys, "chat", "--as", "李红梅", "--config", str(cfg))
    assert code == 0
    assert "李红梅同志的积分" in out and "第 1/3 题" in out
    code, _, err = run(capsys, "chat", "--as", "查无此人", "--config", str(cfg))
    assert code == 2 and "名册中没有" in err


def test_leaderboard_cli(cfg, capsys, monkeypatch):
    run(capsys, "init", "--demo", "--config", str(cfg))
    monkeypatch.setattr(sys, "stdin", io.StringIO("答题\n" + "A\nAB\n" * 6))
    run(capsys, "chat", "--as", "李红梅", "--config", str(cfg))
    code, out, _ = run(capsys, "leaderboard", "--config", str(cfg))
    assert code == 0 and "李红梅" in out
    code, out, _ = run(capsys, "leaderboard", "--scope", "branches", "--config", str(cfg))
    assert code == 0 and "演示第一党支部" in out and "20%" in out


SECRETS = {
    "BRANCHBOT__WECHAT__TOKEN": "supersecrettoken",
    "BRANCHBOT__WECHAT__APP_SECRET": "0123456789abcdef0123456789abcdef",
    "BRANCHBOT__WECHAT__ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "BRANCHBOT__WECOM__TOKEN": "wecomtokensecret",
    "BRANCHBOT__WECOM__ENCODING_AES_KEY": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg",
    "BRANCHBOT__WECOM__SECRET": "wecomAppSecretValue42",
}
ROBOT_KEY = "693a91f6-7a2b-4bc4-97a0-0ec2cfa5aa1b"


def _set_secrets(monkeypatch) -> list[str]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BRANCHBOT__WECHAT__APP_ID", "wx1234567890abcdef")
    monkeypatch.setenv("BRANCHBOT__WECHAT__MODE", "safe")
    monkeypatch.setenv("BRANCHBOT__WECHAT__API_BASE", "http://127.0.0.1:9")  # nothing listens: no network
    monkeypatch.setenv("BRANCHBOT__WECOM__CORP_ID", "ww0123456789abcdef")
    monkeypatch.setenv("BRANCHBOT__WECOM__AGENT_ID", "1000002")
    monkeypatch.setenv("BRANCHBOT__WECOM__API_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("BRANCHBOT__ROBOTS__KEYS", f'{{"演示第一党支部": "{ROBOT_KEY}"}}')
    return [*SECRETS.values(), ROBOT_KEY]


def test_no_secret_is_printed_by_doctor_or_logged(cfg, capsys, monkeypatch):
    """doctor once printed robots.keys in clear; every secret set in the environment is
    grepped for in doctor's output (with the effective configuration) and in log lines."""
    import logging

    from bot.config import load_config
    from bot.redact import RedactingFormatter, secret_values

    run(capsys, "init", "--config", str(cfg))
    secrets = _set_secrets(monkeypatch)
    code, out, err = run(capsys, "doctor", "--show-config", "--config", str(cfg))
    assert code == 1 and "生效配置" in out and "******" in out and "演示第一党支部" in out
    for secret in secrets:
        assert secret not in out + err, secret
    # A log line (and its traceback) quoting secrets, as a library might when a request fails.
    config = load_config(cfg)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(secret_values(config)))
    log = logging.getLogger("test.secrets")
    log.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT_KEY} failed")
        except RuntimeError:
            log.error(
                "request with %s and %s",
                SECRETS["BRANCHBOT__WECHAT__APP_SECRET"],
                SECRETS["BRANCHBOT__WECOM__SECRET"],
                exc_info=True,
            )
    finally:
        log.removeHandler(handler)
    logged = stream.getvalue()
    assert "webhook/send?key=******" in logged and "RuntimeError" in logged
    for secret in secrets:
        assert secret not in logged, secret


def test_no_secret_in_serve_banner_or_logs(cfg, capsys, monkeypatch, tmp_path):
    """`serve` with every secret set: its banner and its log lines never show one."""
    import os
    import signal
    import subprocess

    from tests.conftest import wait_healthy
    from tests.support.net import free_port

    run(capsys, "init", "--demo", "--config", str(cfg))
    secrets = _set_secrets(monkeypatch)
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "BRANCHBOT__SERVER__PORT": str(port), "BRANCHBOT__OUTBOX__POLL_SECONDS": "0.2"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--config", str(cfg)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(port, process, log=log)
            # A broadcast makes the outbox ask the (unreachable) API for tokens and log the failures.
            assert main(["broadcast", "测试推送", "--yes", "--config", str(cfg)]) == 0
            import time

            time.sleep(3)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "正在监听" in text and "INFO" in text
    for secret in secrets:
        assert secret not in text, secret


def test_bad_config_value_is_refused_naming_the_key(cfg, capsys, monkeypatch):
    monkeypatch.setenv("BRANCHBOT__WECHAT__MODE", "safe")
    monkeypatch.setenv("BRANCHBOT__WECHAT__ENCODING_AES_KEY", "tooshort")
    code, _, err = run(capsys, "doctor", "--config", str(cfg))
    assert code == 2 and "wechat.encoding_aes_key" in err
    monkeypatch.setenv("BRANCHBOT__SERVER__PORT", "99999")
    code, _, err = run(capsys, "serve", "--config", str(cfg))
    assert code == 2 and "server.port" in err


def test_unknown_config_key_is_refused(cfg, capsys):
    cfg.write_text(cfg.read_text(encoding="utf-8") + "[quiz.extra]\nfoo = 1\n", encoding="utf-8")
    code, _, err = run(capsys, "doctor", "--config", str(cfg))
    assert code == 2 and "quiz.extra" in err and "未知的配置项" in err


def test_env_lists_are_json(tmp_path):
    from bot.config import load_config

    config = load_config(
        None, {"BRANCHBOT__QUIZ__CATEGORIES": '["党纪", "廉洁"]', "BRANCHBOT__QUIZ__QUESTIONS_PER_PAPER": "5"}
    )
    assert config.quiz.categories == ["党纪", "廉洁"] and config.quiz.questions_per_paper == 5


def member_roles(cfg: Path) -> dict[str, str]:
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:
        roles = {m.phone[-4:]: m.role for m in db.exec(select(Member)).all()}
    store.dispose()
    return roles


def test_grant_and_revoke_roles_with_namesakes_and_audit(cfg, capsys):
    run(capsys, "init", "--config", str(cfg))
    assert run(capsys, "members", "import", str(DATA / "roster.csv"), "--config", str(cfg))[0] == 0
    code, out, _ = run(capsys, "members", "grant", "李明", "书记", "--config", str(cfg))
    assert code == 0 and "已将李明（第一党支部，尾号 0002）的角色由党员改为书记，可管理第一党支部。" in out
    assert "第一党支部现有书记还有 王书记" in out
    assert member_roles(cfg)["0002"] == "书记"

    # Namesakes are refused with their phone tails until --phone picks one.
    code, _, err = run(capsys, "members", "grant", "张伟", "管理员", "--config", str(cfg))
    assert (
        code == 2
        and "名册中有 2 位「张伟」" in err
        and "尾号 1234（第一党支部）" in err
        and "尾号 5678（第二党支部）" in err
    )
    assert "--phone" in err
    code, _, err = run(capsys, "members", "grant", "张伟", "管理员", "--phone", "9999", "--config", str(cfg))
    assert code == 2 and "没有手机尾号为 9999 的" in err
    code, out, _ = run(capsys, "members", "grant", "张伟", "管理员", "--phone", "5678", "--config", str(cfg))
    assert code == 0 and "改为管理员" in out
    assert member_roles(cfg)["5678"] == "管理员" and member_roles(cfg)["1234"] == "党员"

    code, out, _ = run(capsys, "members", "revoke", "李明", "--config", str(cfg))
    assert code == 0 and "由书记改为党员" in out
    code, out, _ = run(capsys, "members", "revoke", "李明", "--config", str(cfg))
    assert code == 0 and "已是党员，无需变更" in out
    code, _, err = run(capsys, "members", "grant", "查无此人", "书记", "--config", str(cfg))
    assert code == 2 and "名册中没有「查无此人」" in err
    with pytest.raises(SystemExit):  # argparse refuses an unknown role
        main(["members", "grant", "李明", "队长", "--config", str(cfg)])
    capsys.readouterr()

    code, out, _ = run(capsys, "audit", "--action", "角色变更", "--config", str(cfg))
    assert code == 0
    lines = [line for line in out.splitlines() if "角色变更" in line and "→" in line]
    assert len(lines) == 3  # no entry for the change that changed nothing
    assert "书记 → 党员" in lines[0] and "党员 → 管理员" in lines[1] and "党员 → 书记" in lines[2]  # newest first
    assert "命令行" in lines[0]


def test_audit_limit_and_empty(cfg, capsys):
    run(capsys, "init", "--config", str(cfg))
    code, out, _ = run(capsys, "audit", "--action", "角色变更", "--config", str(cfg))
    assert code == 0 and "没有「角色变更」的记录" in out
    run(capsys, "members", "import", str(DATA / "roster.csv"), "--config", str(cfg))
    code, out, _ = run(capsys, "audit", "--limit", "1", "--config", str(cfg))
    assert code == 0 and "导入名册" in out and "导入题库" not in out and "显示最近 1 条" in out
    code, out, _ = run(capsys, "audit", "--config", str(cfg))
    assert "导入名册" in out and "导入题库" in out


def test_audit_shows_local_time(cfg, capsys):
    from datetime import datetime

    from bot.audit import record

    run(capsys, "init", "--config", str(cfg))
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:
        record(
            db,
            datetime(2026, 11, 30, 17, 5, tzinfo=UTC),
            "王书记（书记，#1）",
            "通知",
            "[第一党支部] 周五学习",
        )
    store.dispose()
    code, out, _ = run(capsys, "audit", "--action", "通知", "--config", str(cfg))
    assert code == 0 and "2026-12-01 01:05:00" in out and "[第一党支部] 周五学习" in out


def test_broadcast_from_the_cli(cfg, capsys):
    from bot.store.models import AuditEntry, Campaign, Delivery

    run(capsys, "init", "--demo", "--config", str(cfg))
    code, _, err = run(capsys, "broadcast", "周五学习", "--branch", "演示第一党支部", "--config", str(cfg))
    assert code == 2 and "--yes" in err  # never sends without a confirmation
    code, out, _ = run(capsys, "broadcast", "周五下午学习", "--branch", "演示第一党支部", "--yes", "--config", str(cfg))
    assert code == 0 and "将发送给演示第一党支部：5 人" in out and "已创建通知 #1" in out
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:
        assert len(db.exec(select(Delivery).where(Delivery.campaign_id == 1)).all()) == 5
        assert db.get(Campaign, 1).title == "支部通知"
        assert (
            db.exec(select(AuditEntry).where(AuditEntry.action == "发布通知"))
            .one()
            .detail.startswith("#1 → 演示第一党支部")
        )
    code, _, err = run(capsys, "broadcast", "x", "--branch", "不存在", "--yes", "--config", str(cfg))
    assert code == 2 and "没有名为「不存在」的支部" in err


def test_config_before_or_after_subcommand_is_used(tmp_path, no_env_overrides, monkeypatch, capsys):
    """`branchbot --config FILE doctor` once ignored FILE and used ./config.toml and ./data."""
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "elsewhere" / "mine.toml"
    cfg.parent.mkdir()
    cfg.write_text('[database]\nurl = "sqlite:///mine.db"\n', encoding="utf-8")
    assert main(["--config", str(cfg), "init"]) == 0
    assert (cfg.parent / "mine.db").exists()
    assert main(["members", "list", "--config", str(cfg)]) == 0
    assert main(["--config", str(cfg), "members", "list"]) == 0
    assert not (tmp_path / "data").exists()
    capsys.readouterr()


def test_validate_without_a_file_checks_the_bundled_bank_with_the_lint(cfg, capsys):
    code, out, err = run(capsys, "quiz", "validate", "--config", str(cfg))
    assert code == 0, err
    assert "内置题库检查通过（含质量检查）" in out
    total = int(out.split("共 ")[1].split(" 题")[0])
    per_category = [line for line in out.splitlines() if line.startswith("  ") and "题（" in line]
    assert sum(int(line.split("：")[1].split(" 题")[0]) for line in per_category) == total
    assert "单选" in out and "判断" in out


def test_validate_reports_lint_findings_and_no_lint_turns_them_off(cfg, tmp_path, capsys):
    path = write_csv(
        tmp_path / "weak.csv",
        [
            [
                "单选",
                "习近平总书记在纪念五四运动100周年大会上指出，哪一事件是旧民主主义革命走向新民主主义革命的转折点？",
                "五四运动",
                "辛亥革命",
                "中国共产党成立",
                "北伐战争",
                "",
                "",
                "A",
                "解析",
                "党史",
                "习近平《在纪念五四运动100周年大会上的讲话》（2019年4月30日）",
                "1",
            ],
            [
                "单选",
                "党章规定党员必须履行的义务有几项？",
                "八项",
                "七项",
                "九项",
                "十项",
                "",
                "",
                "A",
                "解析",
                "党章",
                "《中国共产党章程》",
                "1",
            ],
        ],
    )
    code, out, err = run(capsys, "quiz", "validate", str(path), "--config", str(cfg))
    assert code == 1
    assert "weak.csv 第 2 行 B 列「题干」：[answer-in-stem]" in err
    assert "weak.csv 第 3 行 L 列「来源」：[source-precision]" in err
    assert "2 题全部有效" in out  # the file itself would import
    code, out, err = run(capsys, "quiz", "validate", str(path), "--no-lint", "--config", str(cfg))
    assert code == 0 and "[answer-in-stem]" not in err


def test_init_retires_bundled_questions_that_were_rewritten(cfg, tmp_path, capsys):
    from quizzes.bank import retired_keys, stem_key

    run(capsys, "init", "--config", str(cfg))
    old = "1941年6月，中共中央正式规定8月1日为中国共产党的诞生纪念日。"
    assert stem_key(old) in retired_keys()
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:  # as if an older release had imported it
        db.add(
            Question(
                kind="判断",
                stem=old,
                stem_key=stem_key(old),
                options=[],
                answer=["f"],
                explanation="旧",
                category="党史",
                source="旧",
            )
        )
    code, out, _ = run(capsys, "init", "--config", str(cfg))
    assert code == 0 and "停用已改写或撤下的内置旧题 1 道" in out
    with store.session() as db:
        assert db.exec(select(Question).where(Question.stem_key == stem_key(old))).one().active is False
