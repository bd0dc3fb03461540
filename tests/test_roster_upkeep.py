"""Re-importing the roster: update by phone, add, and mark the missing 已转出 (never
delete), back to 在册 when they reappear; --no-transfer and demo imports mark nobody."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli import main
from bot.store import Member, PointsEntry, create_store
from bot.store.models import AuditEntry
from tests.conftest import DATA

ROSTER = (DATA / "roster.csv").read_text(encoding="utf-8")


@pytest.fixture
def cfg(tmp_path, no_env_overrides) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[database]\nurl = "sqlite:///cli.db"\n', encoding="utf-8")
    assert main(["init", "--config", str(path)]) == 0
    return path


def run(capsys, cfg: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(cfg)])
    out, err = capsys.readouterr()
    return code, out, err


def roster(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def without(*phones: str) -> str:
    return "".join(line for line in ROSTER.splitlines(keepends=True) if not any(p in line for p in phones))


def statuses(cfg: Path) -> dict[str, str]:
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:
        result = {m.phone: m.status for m in db.exec(select(Member)).all()}
    store.dispose()
    return result


def test_missing_member_is_marked_transferred_and_comes_back(cfg, tmp_path, capsys):
    assert run(capsys, cfg, "members", "import", str(DATA / "roster.csv"))[0] == 0
    store = create_store(f"sqlite:///{cfg.parent / 'cli.db'}")
    with store.session() as db:  # 周芳 has history: points from an earlier month
        zhou = db.exec(select(Member).where(Member.phone == "13900000012")).one()
        db.add(
            PointsEntry(
                member_id=zhou.id,
                branch_id=zhou.branch_id,
                amount=70,
                reason="monthly:2026-10",
                month="2026-10",
                created_at=datetime.now(UTC),
            )
        )
    changed = without("13900000012").replace("李明,13900000002,第一党支部", "李明,13900000002,第二党支部")
    changed += "新同志,13700000000,第二党支部,2024-07-01,党员,,\n"
    code, out, _ = run(capsys, cfg, "members", "import", roster(tmp_path, "r2.csv", changed))
    assert code == 0
    assert "名册导入完成：新增 1 人，更新 1 人，无变化 9 人，标记已转出 1 人。" in out
    assert "已标记为已转出：周芳（第二党支部）" in out
    assert statuses(cfg)["13900000012"] == "已转出"
    with store.session() as db:  # nothing of their history is gone
        assert db.exec(select(Member).where(Member.phone == "13900000012")).one().name == "周芳"
        assert len(db.exec(select(PointsEntry)).all()) == 1
    code, out, _ = run(capsys, cfg, "members", "list")
    assert "已转出" in out and "（其中已转出 1 人）" in out

    # Importing the same file again changes nothing and marks nobody twice.
    code, out, _ = run(capsys, cfg, "members", "import", roster(tmp_path, "r2.csv", changed))
    assert "新增 0 人，更新 0 人，无变化 11 人，标记已转出 0 人" in out

    # Back on the roster: 在册 again, counted as an update.
    code, out, _ = run(capsys, cfg, "members", "import", str(DATA / "roster.csv"))
    assert "新增 0 人，更新 2 人，无变化 9 人，标记已转出 1 人" in out  # 周芳 back, 李明 moved; 新同志 out
    assert "重新列入名册、已恢复在册：周芳（第二党支部）" in out
    now = statuses(cfg)
    assert now["13900000012"] == "在册" and now["13700000000"] == "已转出"
    with store.session() as db:
        details = [
            e.detail
            for e in db.exec(select(AuditEntry).where(AuditEntry.action == "导入名册").order_by(AuditEntry.id)).all()
        ]
    store.dispose()
    assert len(details) == 4 and details[1] == "r2.csv：新增 1 人，更新 1 人，无变化 9 人，标记已转出 1 人"


def test_member_without_history_is_marked_not_deleted(cfg, tmp_path, capsys):
    assert run(capsys, cfg, "members", "import", str(DATA / "roster.csv"))[0] == 0
    code, out, _ = run(
        capsys, cfg, "members", "import", roster(tmp_path, "r.csv", without("13900000004", "13900000021"))
    )
    assert code == 0 and "标记已转出 2 人" in out
    now = statuses(cfg)
    assert len(now) == 11 and now["13900000004"] == now["13900000021"] == "已转出"


def test_no_transfer_imports_a_partial_file(cfg, tmp_path, capsys):
    assert run(capsys, cfg, "members", "import", str(DATA / "roster.csv"))[0] == 0
    partial = (
        "\n".join(ROSTER.splitlines()[:3]).replace("李明,13900000002,第一党支部", "李明,13900000002,第二党支部") + "\n"
    )
    code, out, _ = run(capsys, cfg, "members", "import", "--no-transfer", roster(tmp_path, "part.csv", partial))
    assert code == 0
    assert "名册导入完成：新增 0 人，更新 1 人，无变化 1 人。" in out and "已转出" not in out
    assert set(statuses(cfg).values()) == {"在册"}


def test_demo_roster_never_marks_real_members_and_real_roster_leaves_demo_alone(cfg, tmp_path, capsys):
    assert run(capsys, cfg, "members", "import", str(DATA / "roster.csv"))[0] == 0
    code, out, _ = run(capsys, cfg, "init", "--demo")
    assert code == 0 and "标记已转出" not in out
    assert set(statuses(cfg).values()) == {"在册"}
    code, out, _ = run(capsys, cfg, "members", "import", str(DATA / "roster.csv"))
    assert "无变化 11 人，标记已转出 0 人" in out
    assert set(statuses(cfg).values()) == {"在册"} and len(statuses(cfg)) == 21


def test_empty_roster_file_is_refused(cfg, tmp_path, capsys):
    assert run(capsys, cfg, "members", "import", str(DATA / "roster.csv"))[0] == 0
    code, _, err = run(capsys, cfg, "members", "import", roster(tmp_path, "empty.csv", ROSTER.splitlines()[0] + "\n"))
    assert code == 1 and "没有任何成员行" in err
    assert set(statuses(cfg).values()) == {"在册"}


def test_quiz_import_is_audited(cfg, tmp_path, capsys):
    path = tmp_path / "bank.csv"
    path.write_text(
        "题型,题干,选项A,选项B,答案,解析,分类,来源,难度\n单选,审计测试题？,甲,乙,A,解析,党章,来源,1\n", encoding="utf-8"
    )
    assert run(capsys, cfg, "quiz", "import", str(path))[0] == 0
    code, out, _ = run(capsys, cfg, "audit", "--action", "导入题库", "--limit", "1")
    assert code == 0 and "bank.csv：新增 1 题" in out and "starter.csv" not in out
