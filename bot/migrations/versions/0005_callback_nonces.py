"""callback nonces: plain and compatible mode refuse a reused nonce with another body

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 20:40:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('callbacknonce',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('body_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('seen_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('callbacknonce', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callbacknonce_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('callbacknonce', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callbacknonce_seen_at'))
    op.drop_table('callbacknonce')
