"""audit trail readable: whom and what an event concerns (insured person, flag, camera), indexed; actor indexed

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# Events written before this revision get their references from what they already say: the subject
# (insured:, flag:, camera:) and the rows it names. substr and || mean the same on SQLite and PostgreSQL.
_BACKFILL = [
    "UPDATE audit_events SET insured_id = substr(subject, 9) WHERE subject LIKE 'insured:%'",
    "UPDATE audit_events SET flag_id = substr(subject, 6) WHERE subject LIKE 'flag:%'",
    "UPDATE audit_events SET camera_id = substr(subject, 8) WHERE subject LIKE 'camera:%'",
    "UPDATE audit_events SET insured_id = (SELECT v.insured_id FROM verifications v "
    "WHERE 'verification:' || v.id = audit_events.subject) WHERE subject LIKE 'verification:%'",
    "UPDATE audit_events SET insured_id = (SELECT s.insured_id FROM settlements s "
    "WHERE 'settlement:' || s.id = audit_events.subject) WHERE subject LIKE 'settlement:%'",
    "UPDATE audit_events SET camera_id = (SELECT fe.camera_id FROM face_evidence fe "
    "WHERE 'face_evidence:' || fe.id = audit_events.subject) WHERE subject LIKE 'face_evidence:%'",
    "UPDATE audit_events SET insured_id = (SELECT s.insured_id FROM flags f JOIN settlements s "
    "ON s.id = f.settlement_id WHERE f.id = audit_events.flag_id) WHERE flag_id IS NOT NULL",
]


def upgrade() -> None:
    with op.batch_alter_table('audit_events') as batch:
        batch.add_column(sa.Column('insured_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('flag_id', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('camera_id', sa.String(length=64), nullable=True))
    op.create_index('ix_audit_events_actor', 'audit_events', ['actor'])
    op.create_index('ix_audit_events_insured_id', 'audit_events', ['insured_id'])
    op.create_index('ix_audit_events_flag_id', 'audit_events', ['flag_id'])
    op.create_index('ix_audit_events_camera_id', 'audit_events', ['camera_id'])
    for sql in _BACKFILL:
        op.execute(sa.text(sql))


def downgrade() -> None:
    for name in ('camera_id', 'flag_id', 'insured_id', 'actor'):
        op.drop_index(f'ix_audit_events_{name}', table_name='audit_events')
    with op.batch_alter_table('audit_events') as batch:
        batch.drop_column('camera_id')
        batch.drop_column('flag_id')
        batch.drop_column('insured_id')
