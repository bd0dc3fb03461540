"""Everyday CLI polish: Chinese choices and errors, empty boards, tables that fit 80 columns,
outbox status in Chinese, quiet timer jobs, and `make run` telling how to use the CLI."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cfg(tmp_path, no_env_overrides) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///cli.db"\n', encoding="utf-8")
    return path


def run(capsys, *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse refusals
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out + err


def test_leaderboard_scope_in_chinese_with_english_aliases(cfg, capsys):
    assert main(["init", "--demo", "--config", str(cfg)]) == 0
    capsys.readouterr()
    code, out = run(capsys, "leaderboard", "--scope", "支部", "--config", str(cfg))
    assert code == 0 and "各支部测试情况" in out and "演示第一党支部" in out
    code, out = run(capsys, "leaderboard", "--scope", "branches", "--config", str(cfg))
    assert code == 0 and "各支部测试情况" in out
    code, out = run(capsys, "leaderboard", "--scope", "总", "--config", str(cfg))
    assert code == 0 and "还没有人获得积分" in out and "┃" not in out  # an empty board says so, no empty table
    code, out = run(capsys, "leaderboard", "--scope", "本月", "--month", "2020-01", "--config", str(cfg))
    assert code == 0 and "2020-01 还没有人完成测试" in out
    code, out = run(capsys, "leaderboard", "--scope", "全年", "--config", str(cfg))
    assert code == 2 and "参数 --scope：没有「全年」，可选：本月、总、支部" in out and "invalid choice" not in out


def test_argparse_errors_are_chinese(cfg, capsys):
    code, out = run(capsys, "leaderbord", "--config", str(cfg))
    assert code == 2 and "子命令：没有「leaderbord」" in out and "用法：branchbot" in out
    code, out = run(capsys, "calendar", "明年")
    assert code == 2 and "「明年」不是年份" in out
    code, out = run(capsys, "leaderboard", "--top", "0", "--config", str(cfg))
    assert code == 2 and "应为正整数" in out
    code, out = run(capsys, "export", "成绩", "--config", str(cfg))
    assert code == 2 and "缺少参数 -o/--output" in out
    code, out = run(capsys, "members", "grant", "张三", "书记员", "--config", str(cfg))
    assert code == 2 and "没有「书记员」，可选：党员、书记、管理员" in out
    for english in ("usage:", "error:", "invalid", "required"):
        assert english not in out


def test_config_errors_are_chinese(cfg, capsys, monkeypatch):
    monkeypatch.setenv("BRANCHBOT__SERVER__PORT", "八千")
    code, out = run(capsys, "doctor", "--config", str(cfg))
    assert code == 2 and "server.port：应为整数" in out
    monkeypatch.setenv("BRANCHBOT__SERVER__PORT", "8000")
    monkeypatch.setenv("BRANCHBOT__WECHAT__MODE", "secure")
    code, out = run(capsys, "doctor", "--config", str(cfg))
    assert code == 2 and "wechat.mode：应为以下之一：'plain'、'compatible'、'safe'" in out and "Input should" not in out


def test_outbox_status_in_chinese_without_none(cfg, capsys, monkeypatch):
    """`outbox status` once showed `None×3` and `broadcast`."""
    from sqlmodel import select

    from bot.store import Member, create_store
    from tests.conftest import DATA

    monkeypatch.setenv("BRANCHBOT__WECHAT__TOKEN", "abc123")
    assert main(["init", "--config", str(cfg)]) == 0
    assert main(["members", "import", str(DATA / "roster.csv"), "--config", str(cfg)]) == 0
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:
        for i, member in enumerate(db.exec(select(Member).order_by(Member.id).limit(2)).all()):
            member.openid, member.subscribed = f"o-bound-{i}", True
            db.add(member)
    store.dispose()
    assert main(["broadcast", "周五下午学习党章", "--yes", "--config", str(cfg)]) == 0
    capsys.readouterr()
    code, out = run(capsys, "outbox", "run", "--max-seconds", "20", "--config", str(cfg))
    assert code == 0 and "支部通知" in out and "broadcast" not in out
    assert "None" not in out and "未配置公众号 app_id / app_secret（2 人）" in out and "失败 2" in out


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHBOT__")}
    env["COLUMNS"] = "80"
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args, "--config", str(cfg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_tables_fit_80_columns_and_wrap_instead_of_cutting(cfg):
    assert _cli(cfg, "init", "--demo").returncode == 0
    for args in (("members", "list"), ("jobs", "list"), ("leaderboard", "--scope", "支部"), ("audit",)):
        result = _cli(cfg, *args)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(cell_len(line) for line in lines) <= 80, (args, result.stdout)
        assert "…" not in result.stdout, (args, result.stdout)
    members = _cli(cfg, "members", "list").stdout
    assert "演示第一党支部" in members.replace("\n", "").replace("│", "").replace(" ", "") or "演示第一" in members
    assert "****" in members  # the phone column (masked, with its tail) is shown, not cut away


def test_timer_jobs_do_not_log_at_info(env, caplog):
    """The 抢答赛 timer wrote two INFO lines every 5 seconds; APScheduler 8 lines at each start."""
    from scheduler.runner import JobRunner

    caplog.set_level(logging.INFO)
    runner = JobRunner(env.store, env.config, env.clock)
    runner.start()
    runner._tick_contests()
    runner.stop()
    chatter = [r for r in caplog.records if r.name.startswith("apscheduler") and r.levelno >= logging.INFO]
    assert chatter == []
    caplog.set_level(logging.DEBUG)
    runner = JobRunner(env.store, env.config, env.clock)
    runner.start()
    runner.stop()
    assert any("Adding job tentatively" in r.getMessage() and r.levelname == "DEBUG" for r in caplog.records)


def test_make_run_says_how_to_use_the_cli_before_serving():
    result = subprocess.run(
        ["make", "-n", "run", "VENV=.venv-none"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    lines = result.stdout.splitlines()
    hint = next(i for i, line in enumerate(lines) if "source .venv-none/bin/activate" in line)
    serve = next(i for i, line in enumerate(lines) if "branchbot serve" in line)
    assert hint < serve and any(".venv-none/bin/branchbot --help" in line for line in lines)
