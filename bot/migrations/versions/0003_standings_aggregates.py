"""maintained standings aggregates, backfilled from the ledger and attempts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 02:24:10.378991

membertotal (a member's all-time points), branchmembertotal (points earned in a branch)
and branchmonth (finished attempts and their score sum per branch and month), kept by
quizzes/points.py in the same transaction as the ledger entry or finished attempt. The
upgrade fills them from what an existing deployment already has, then adds the indexes
the boards read. Stop every ``branchbot serve`` before upgrading (serve refuses to start
on a schema behind the code): an old process still writing the ledger would not keep
the new totals.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('branchmonth',
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('finished', sa.Integer(), nullable=False),
    sa.Column('score_sum', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], ),
    sa.PrimaryKeyConstraint('month', 'branch_id')
    )
    op.create_table('branchmembertotal',
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('reached_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('branch_id', 'member_id')
    )
    op.create_table('membertotal',
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('reached_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('member_id')
    )

    # Backfill: the same sums the boards used to compute on every request. MAX(created_at)
    # is the time each total was reached; on SQLite it is the stored text, in the same
    # format the column writes, so it round-trips unchanged.
    op.execute("INSERT INTO membertotal (member_id, points, reached_at) "
               "SELECT member_id, SUM(amount), MAX(created_at) FROM pointsentry GROUP BY member_id")
    op.execute("INSERT INTO branchmembertotal (branch_id, member_id, points, reached_at) "
               "SELECT branch_id, member_id, SUM(amount), MAX(created_at) FROM pointsentry GROUP BY branch_id, member_id")
    op.execute("INSERT INTO branchmonth (month, branch_id, finished, score_sum) "
               "SELECT month, branch_id, COUNT(*), SUM(score) FROM attempt WHERE finished_at IS NOT NULL GROUP BY month, branch_id")

    op.create_index('ix_membertotal_board', 'membertotal', [sa.literal_column('points DESC'), 'reached_at', 'member_id'], unique=False)
    op.create_index('ix_branchmembertotal_board', 'branchmembertotal',
                    ['branch_id', sa.literal_column('points DESC'), 'reached_at', 'member_id'], unique=False)
    op.create_index('ix_attempt_month_board', 'attempt', ['month', sa.literal_column('score DESC'), 'finished_at', 'member_id'], unique=False)
    op.create_index('ix_member_status_branch', 'member', ['status', 'branch_id'], unique=False)
    op.create_index('ix_pointsentry_member_month', 'pointsentry', ['member_id', 'month'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pointsentry_member_month', table_name='pointsentry')
    op.drop_index('ix_member_status_branch', table_name='member')
    op.drop_index('ix_attempt_month_board', table_name='attempt')
    op.drop_index('ix_membertotal_board', table_name='membertotal')
    op.drop_index('ix_branchmembertotal_board', table_name='branchmembertotal')
    op.drop_table('membertotal')
    op.drop_table('branchmembertotal')
    op.drop_table('branchmonth')
