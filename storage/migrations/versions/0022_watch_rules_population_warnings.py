"""watch rules: population categories, households, monthly warnings; settlements' personal burden

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 12:05:00
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('claim_settlements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('psn_part_amt', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('psn_cash_pay', sa.String(length=32), nullable=True))

    op.create_table('person_categories',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('psn_no', sa.String(length=64), nullable=False),
    sa.Column('psn_idet_type', sa.String(length=32), nullable=False),
    sa.Column('psn_type_lv', sa.String(length=8), nullable=True),
    sa.Column('begntime', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('endtime', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('imported_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('psn_no', 'psn_idet_type', 'begntime')
    )
    with op.batch_alter_table('person_categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_categories_psn_no'), ['psn_no'], unique=False)

    op.create_table('household_members',
    sa.Column('psn_no', sa.String(length=64), nullable=False),
    sa.Column('household_id', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=100), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('imported_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('psn_no')
    )
    with op.batch_alter_table('household_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_members_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_household_members_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_household_members_unit'), ['unit'], unique=False)

    op.create_table('watch_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('started_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('watch_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watch_runs_month'), ['month'], unique=False)

    op.create_table('watch_warnings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.String(length=60), nullable=False),
    sa.Column('rule_version', sa.String(length=64), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('psn_no', sa.String(length=64), nullable=True),
    sa.Column('household_id', sa.String(length=64), nullable=True),
    sa.Column('unit', sa.String(length=100), nullable=True),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('category', sa.String(length=16), nullable=True),
    sa.Column('figure', sa.String(length=32), nullable=False),
    sa.Column('threshold', sa.String(length=32), nullable=False),
    sa.Column('first_month', sa.String(length=7), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['watch_runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('month', 'rule_id', 'subject')
    )
    with op.batch_alter_table('watch_warnings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watch_warnings_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_watch_warnings_month'), ['month'], unique=False)
        batch_op.create_index(batch_op.f('ix_watch_warnings_psn_no'), ['psn_no'], unique=False)
        batch_op.create_index(batch_op.f('ix_watch_warnings_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_watch_warnings_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_watch_warnings_unit'), ['unit'], unique=False)


def downgrade() -> None:
    op.drop_table('watch_warnings')
    op.drop_table('watch_runs')
    op.drop_table('household_members')
    op.drop_table('person_categories')
    with op.batch_alter_table('claim_settlements', schema=None) as batch_op:
        batch_op.drop_column('psn_cash_pay')
        batch_op.drop_column('psn_part_amt')
