"""rule reference data: days of supply per drug, substitution groups, price bands

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rule_reference',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('rule_id', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('med_list_codg', sa.String(length=64), nullable=True),
    sa.Column('group_name', sa.String(length=100), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('imported_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('imported_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['rules.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rule_id', 'kind', 'key')
    )
    with op.batch_alter_table('rule_reference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rule_reference_rule_id'), ['rule_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rule_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rule_reference_rule_id'))
    op.drop_table('rule_reference')
