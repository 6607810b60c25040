"""staff gallery, camera zones, staff suggestions; face evidence knows staff, zone and payer

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

import storage.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staff_members',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('staff_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organisations.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_staff_members_org_id', 'staff_members', ['org_id'])
    op.create_index('ix_staff_members_org_staff', 'staff_members', ['org_id', 'staff_id'], unique=True)
    op.create_table(
        'staff_templates',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('member_id', sa.String(length=32), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('photo_key', sa.String(length=300), nullable=False),
        sa.Column('photo_sha256', sa.String(length=64), nullable=False),
        sa.Column('model', sa.String(length=100), nullable=False),
        sa.Column('dim', sa.Integer(), nullable=False),
        sa.Column('embedding', sa.LargeBinary(), nullable=False),
        sa.Column('quality', sa.JSON(), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['member_id'], ['staff_members.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_staff_templates_member_id', 'staff_templates', ['member_id'])
    op.create_index('ix_staff_templates_org_id', 'staff_templates', ['org_id'])
    op.create_index('ix_staff_templates_member_sha', 'staff_templates', ['member_id', 'photo_sha256'], unique=True)
    op.create_table(
        'staff_suggestions',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('camera_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('first_seen', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('checks', sa.Integer(), nullable=False),
        sa.Column('checks_total', sa.Integer(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('evidence_ids', sa.JSON(), nullable=False),
        sa.Column('model', sa.String(length=100), nullable=False),
        sa.Column('dim', sa.Integer(), nullable=False),
        sa.Column('embedding', sa.LargeBinary(), nullable=False),
        sa.Column('decided_by', sa.String(length=200), nullable=True),
        sa.Column('decided_at', storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('member_id', sa.String(length=32), nullable=True),
        sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_staff_suggestions_org_id', 'staff_suggestions', ['org_id'])
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.add_column(sa.Column('zones', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('face_evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('staff_member_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('staff_score', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('zone', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('is_payer', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('face_evidence', schema=None) as batch_op:
        batch_op.drop_column('is_payer')
        batch_op.drop_column('zone')
        batch_op.drop_column('staff_score')
        batch_op.drop_column('staff_member_id')
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_column('zones')
    op.drop_table('staff_suggestions')
    op.drop_table('staff_templates')
    op.drop_table('staff_members')
