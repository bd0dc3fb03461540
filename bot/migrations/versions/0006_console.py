"""the web console: login tokens, sessions, failed-login attempts, uploads; 纠错 handled

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:22:28.253325

consolelogintoken (one-time 后台 links, stored as hashes), consolesession (server-side
sessions), consoleloginfailure (the attempt limit on unknown tokens), consoleupload (a
previewed roster or question file awaiting 确认导入), and questionreport.handled_at /
handled_by (a 纠错 report marked handled). Existing reports start unhandled.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consoleloginfailure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consoleloginfailure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consoleloginfailure_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_consoleloginfailure_client'), ['client'], unique=False)

    op.create_table('consoleupload',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('session_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('consoleupload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consoleupload_session_hash'), ['session_hash'], unique=False)

    op.create_table('consolelogintoken',
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('consolelogintoken', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consolelogintoken_member_id'), ['member_id'], unique=False)

    op.create_table('consolesession',
    sa.Column('id_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('csrf', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('via', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id_hash')
    )
    with op.batch_alter_table('consolesession', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consolesession_member_id'), ['member_id'], unique=False)

    with op.batch_alter_table('questionreport', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handled_at', bot.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('handled_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('questionreport', schema=None) as batch_op:
        batch_op.drop_column('handled_by')
        batch_op.drop_column('handled_at')

    with op.batch_alter_table('consolesession', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consolesession_member_id'))

    op.drop_table('consolesession')
    with op.batch_alter_table('consolelogintoken', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consolelogintoken_member_id'))

    op.drop_table('consolelogintoken')
    with op.batch_alter_table('consoleupload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consoleupload_session_hash'))

    op.drop_table('consoleupload')
    with op.batch_alter_table('consoleloginfailure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consoleloginfailure_client'))
        batch_op.drop_index(batch_op.f('ix_consoleloginfailure_at'))

    op.drop_table('consoleloginfailure')
