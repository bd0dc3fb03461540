"""Roster names are stored as chat input is read (NFKC): names with full-width letters or
Kangxi radicals bind, whether imported now or stored before the fix (migration 0004)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import insert, text
from sqlmodel import select

from bot.store import Branch, Member, create_store
from bot.store.migrate import _alembic, head, upgrade
from tests.conftest import build_env, load_roster

# U+2F4A KANGXI RADICAL TREE looks like 木 but is another character; Ｌ is full-width.
KANGXI = "\u2f4a兰"
FULL_WIDTH = "李Ｌｅｉ"
ROSTER = (
    "姓名,手机号,支部,入党日期,角色\n"
    f"{KANGXI},13900000031,第一党支部,2010-07-01,党员\n"
    f"{FULL_WIDTH},13900000032,第一党支部,2011-07-01,党员\n"
)


def test_names_changed_by_normalisation_bind_after_import(tmp_path, clock, database_url):
    env = build_env(tmp_path, clock, database_url=database_url)
    path = tmp_path / "roster-odd-names.csv"
    path.write_text(ROSTER, encoding="utf-8")
    load_roster(env.store, path)
    with env.client:
        with env.store.session() as db:
            names = set(db.exec(select(Member.name).where(Member.phone.in_(["13900000031", "13900000032"]))).all())
        assert names == {"木兰", "李Lei"}
        # Members type either form; the chat normalises both to what the roster holds.
        assert "绑定成功" in env.wechat("o-mulan").say(f"绑定 {KANGXI} 0031")
        assert "绑定成功" in env.wechat("o-lilei").say("绑定 李Ｌｅｉ 0032")
    env.store.dispose()


def test_upgrade_normalises_names_already_stored(database_url):
    store = create_store(database_url)
    cfg = _alembic(store)
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    with store.engine.begin() as conn:
        conn.execute(insert(Branch), [{"name": "第一党支部"}])
        conn.execute(
            insert(Member),
            [
                {
                    "name": name,
                    "phone": phone,
                    "branch_id": 1,
                    "role": "党员",
                    "subscribed": True,
                    "is_demo": False,
                    "status": "在册",
                }
                for name, phone in ((KANGXI, "13900000031"), (FULL_WIDTH, "13900000032"), ("张三", "13900000033"))
            ],
        )
    assert upgrade(store) == ("0003", head(store))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT phone, name FROM member ORDER BY phone")).all() == [
            ("13900000031", "木兰"),
            ("13900000032", "李Lei"),
            ("13900000033", "张三"),
        ]
    store.dispose()
