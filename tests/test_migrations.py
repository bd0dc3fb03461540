"""Migrations match the models; init upgrades; serve refuses a database that is behind or ahead."""

from __future__ import annotations

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
    cfg.write_text('[database]\nurl = "sqlite:///m.db"\n', encoding="utf-8")
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
        conn.execute(text("INSERT INTO member (name, phone, branch_id, role, subscribed, is_demo, status) "
                          "VALUES ('张三', '13900000001', 1, '党员', true, false, '在册')"))
        conn.execute(text("INSERT INTO paper (branch_id, month, question_ids, created_at) VALUES (1, '2026-11', '[1]', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO attempt (member_id, paper_id, branch_id, month, option_orders, position, correct, score, started_at) "
                          "VALUES (1, 1, 1, '2026-11', '{}', 10, 9, 90, CURRENT_TIMESTAMP)"))
    assert current(store) == "0001"
    before, after = upgrade(store)
    assert (before, after) == ("0001", head(store))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT name, phone FROM member")).all() == [("张三", "13900000001")]
        assert conn.execute(text("SELECT score FROM attempt")).scalar() == 90
    assert "ix_attempt_board" in {ix["name"] for ix in inspect(store.engine).get_indexes("attempt")}
    store.dispose()
