"""roster names normalised as chat input is (NFKC, single spaces)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 20:30:00

Chat input goes through NFKC before 「绑定 姓名 ……」 is matched against the roster, but
roster names were stored as typed: a name with full-width letters (李Ａ) or a Kangxi
radical (⽊兰) could never bind. Imports now normalise names (bot.roster); this brings
existing rows in line. The rule is written out here, not imported, so the migration
keeps meaning what it meant when it was written.
"""

import unicodedata

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text or "").split())


def upgrade() -> None:
    member = sa.table("member", sa.column("id", sa.Integer), sa.column("name", sa.String))
    conn = op.get_bind()
    for member_id, name in conn.execute(sa.select(member.c.id, member.c.name)).all():
        fixed = _normalise(name)
        if fixed != name:
            conn.execute(member.update().where(member.c.id == member_id).values(name=fixed))


def downgrade() -> None:
    pass  # the original spellings are not kept; normalised names bind and display the same
