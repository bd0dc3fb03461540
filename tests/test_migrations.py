"""Migrations match the models; init upgrades; serve refuses a database that is behind or ahead."""

from __future__ import annotations

from datetime import UTC

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

from bot.cli import main
from bot.store import create_store
from bot.store.migrate import current, head, upgrade


def test_migrations_build_exactly_the_models(database_url):
    store = create_store(database_url)
    upgrade(store)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), SQLModel.metadata)
    assert diff == []
    assert current(store) == head(store)
    store.dispose()


def test_serve_refuses_a_database_behind_or_ahead(tmp_path, capsys, no_env_overrides):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite:///m.db"\n[wechat]\ntoken = "migrationtest"\n', encoding="utf-8")
    assert main(["init", "--demo", "--config", str(cfg)]) == 0
    store = create_store(f"sqlite:///{tmp_path / 'm.db'}")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    assert main(["serve", "--config", str(cfg)]) == 2
    assert "比当前程序新" in capsys.readouterr().err
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    assert main(["serve", "--config", str(cfg)]) == 2
    assert "branchbot db upgrade" in capsys.readouterr().err
    # The first migration's data survives an upgrade: the demo roster and bank are still there.
    with store.engine.begin() as conn:
        conn.execute(text(f"INSERT INTO alembic_version (version_num) VALUES ('{head(store)}')"))
        members = conn.execute(text("SELECT COUNT(*) FROM member")).scalar()
    assert main(["db", "upgrade", "--config", str(cfg)]) == 0
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM member")).scalar() == members == 10


def test_sqlite_online_backup(tmp_path, capsys, no_env_overrides):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[database]\nurl = "sqlite:///b.db"\n', encoding="utf-8")
    main(["init", "--demo", "--config", str(cfg)])
    assert main(["db", "backup", str(tmp_path / "copy.db"), "--config", str(cfg)]) == 0
    copy = create_store(f"sqlite:///{tmp_path / 'copy.db'}")
    with copy.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM question")).scalar() >= 300
    assert main(["db", "backup", str(tmp_path / "copy.db"), "--config", str(cfg)]) == 2  # never overwrites


def test_upgrade_from_the_first_migration_keeps_the_data(database_url):
    from alembic import command
    from sqlalchemy import inspect

    from bot.store.migrate import _alembic

    store = create_store(database_url)
    cfg = _alembic(store)
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO branch (name) VALUES ('第一党支部')"))
        conn.execute(
            text(
                "INSERT INTO member (name, phone, branch_id, role, subscribed, is_demo, status) "
                "VALUES ('张三', '13900000001', 1, '党员', true, false, '在册')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO paper (branch_id, month, question_ids, created_at) VALUES (1, '2026-11', '[1]', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO attempt (member_id, paper_id, branch_id, month, option_orders, position, correct, score, started_at) "
                "VALUES (1, 1, 1, '2026-11', '{}', 10, 9, 90, CURRENT_TIMESTAMP)"
            )
        )
    assert current(store) == "0001"
    before, after = upgrade(store)
    assert (before, after) == ("0001", head(store))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT name, phone FROM member")).all() == [("张三", "13900000001")]
        assert conn.execute(text("SELECT score FROM attempt")).scalar() == 90
    assert "ix_attempt_board" in {ix["name"] for ix in inspect(store.engine).get_indexes("attempt")}
    store.dispose()


def test_upgrade_from_0002_backfills_the_standings_aggregates_from_the_ledger(database_url):
    """An existing deployment's points and finished attempts become the maintained totals
    (0003): equal to the ledger, ranked as the ledger ranked them, and kept from then on."""
    from datetime import datetime, timedelta

    from alembic import command
    from sqlalchemy import insert

    from bot.store import Attempt, Branch, Member, Paper, PointsEntry, hot
    from bot.store.migrate import _alembic
    from quizzes.points import award
    from quizzes.standings import branch_board, total_board
    from tests.support.ledger import assert_aggregates_match_the_ledger

    store = create_store(database_url)
    cfg = _alembic(store)
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    t = datetime(2026, 10, 20, 2, 0, 0, 123456, tzinfo=UTC)
    with store.engine.begin() as conn:
        conn.execute(insert(Branch), [{"name": "第一党支部"}, {"name": "第二党支部"}])
        conn.execute(
            insert(Member),
            [
                {
                    "name": name,
                    "phone": phone,
                    "branch_id": branch,
                    "role": "党员",
                    "subscribed": True,
                    "is_demo": False,
                    "status": "在册",
                }
                for name, phone, branch in (
                    ("张三", "13900000001", 1),
                    ("李四", "13900000002", 1),
                    ("王五", "13900000003", 2),
                )
            ],
        )
        conn.execute(
            insert(PointsEntry),
            [
                {
                    "member_id": m,
                    "branch_id": b,
                    "amount": amount,
                    "kind": kind,
                    "reason": "r",
                    "month": at.strftime("%Y-%m"),
                    "created_at": at,
                }
                for m, b, amount, kind, at in (
                    (1, 1, 10, "earn", t),
                    (1, 1, 10, "earn", t + timedelta(days=1)),
                    (1, 1, -5, "correction", t + timedelta(days=30)),
                    (2, 1, 15, "earn", t + timedelta(days=2)),  # 15 like 张三, but reached first
                    (3, 1, 10, "earn", t),
                    (3, 2, 20, "earn", t + timedelta(days=31)),
                )
            ],
        )  # 王五 moved to 第二党支部
        conn.execute(
            insert(Paper),
            [
                {"branch_id": b, "month": m, "question_ids": [1], "created_at": t}
                for b, m in ((1, "2026-10"), (1, "2026-11"), (2, "2026-11"))
            ],
        )
        conn.execute(
            insert(Attempt),
            [
                {
                    "member_id": m,
                    "paper_id": p,
                    "branch_id": b,
                    "month": month,
                    "option_orders": {},
                    "position": 10,
                    "correct": s // 10,
                    "score": s,
                    "started_at": t,
                    "finished_at": finished,
                }
                for m, p, b, month, s, finished in (
                    (1, 1, 1, "2026-10", 80, t),
                    (1, 2, 1, "2026-11", 90, t + timedelta(days=30)),
                    (2, 2, 1, "2026-11", 30, None),  # still answering: not counted
                    (3, 3, 2, "2026-11", 100, t + timedelta(days=31)),
                )
            ],
        )
    assert upgrade(store) == ("0002", head(store))
    assert_aggregates_match_the_ledger(store)
    with store.session() as db:
        assert [(r.name, r.points, r.at) for r in total_board(db)] == [
            ("王五", 30, t + timedelta(days=31)),
            ("李四", 15, t + timedelta(days=2)),
            ("张三", 15, t + timedelta(days=30)),
        ]
        assert [(r.name, r.points) for r in total_board(db, 1)] == [("李四", 15), ("张三", 15), ("王五", 10)]
        assert hot.total_place(db, 1) == hot.Place(3, 3, 15) and hot.total_place(db, 3, 1) == hot.Place(3, 3, 10)
        card = hot.points_card(db, 1, 1, "2026-11")
        assert (card.month_points, card.total_points) == (-5, 15)
        figures = {b.name: (b.members, b.finished, b.average) for b in branch_board(db, "2026-11")}
        assert figures == {"第一党支部": (2, 1, 90.0), "第二党支部": (1, 1, 100.0)}
        award(db, 1, 1, 3, "monthly:2026-11", "2026-11", t + timedelta(days=32))  # kept from now on
    assert_aggregates_match_the_ledger(store)
    with store.session() as db:
        assert [(r.name, r.points) for r in total_board(db)] == [("王五", 30), ("张三", 18), ("李四", 15)]
    store.dispose()


def test_upgrade_from_0005_adds_the_console_tables_and_keeps_reports_unhandled(database_url):
    """0006 (the web console): existing 纠错 reports survive the upgrade, unhandled."""
    from alembic import command
    from sqlalchemy import inspect

    from bot.store.migrate import _alembic

    store = create_store(database_url)
    cfg = _alembic(store)
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO branch (name) VALUES ('第一党支部')"))
        conn.execute(
            text(
                "INSERT INTO member (name, phone, branch_id, role, subscribed, is_demo, status) "
                "VALUES ('张三', '13900000001', 1, '党员', true, false, '在册')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO question (kind, stem, stem_key, options, answer, explanation, category, source, difficulty, active) "
                "VALUES ('判断', '题干', 'k1', '[]', '[]', '解析', '党史', '来源', 2, true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO questionreport (member_id, question_id, text, at) VALUES (1, 1, '年份有误', CURRENT_TIMESTAMP)"
            )
        )
    assert upgrade(store) == ("0005", head(store))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT text, handled_at, handled_by FROM questionreport")).all() == [
            ("年份有误", None, "")
        ]
    tables = set(inspect(store.engine).get_table_names())
    assert {"consolelogintoken", "consolesession", "consoleloginfailure", "consoleupload"} <= tables
    store.dispose()
