"""attempt limits (binding per roster entry, check-in codes per meeting) and the retry window

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 20:40:00

member.bind_locked_until: a roster entry locked after too many failed 绑定 guesses from
any senders. bindattempt.member_id: the entry a failed guess counts against (NULL: the
sender's own row). meetingreply.wrong_codes: wrong check-in codes a member typed for a
meeting. delivery.failing_since: a delivery's first transient failure; the outbox
retries until ``outbox.retry_window`` after it.
"""

from alembic import op
import sqlalchemy as sa
import bot.store.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('member', sa.Column('bind_locked_until', bot.store.models.UTCDateTime(timezone=True), nullable=True))
    op.add_column('bindattempt', sa.Column('member_id', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_bindattempt_member_id'), 'bindattempt', ['member_id'], unique=False)
    op.add_column('meetingreply', sa.Column('wrong_codes', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('delivery', sa.Column('failing_since', bot.store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delivery') as batch:
        batch.drop_column('failing_since')
    with op.batch_alter_table('meetingreply') as batch:
        batch.drop_column('wrong_codes')
    op.drop_index(op.f('ix_bindattempt_member_id'), table_name='bindattempt')
    with op.batch_alter_table('bindattempt') as batch:
        batch.drop_column('member_id')
    with op.batch_alter_table('member') as batch:
        batch.drop_column('bind_locked_until')
