"""recording: cameras, segments, gaps, holds, retention

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 06:01:54.014109
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('retention_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('started_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('cameras',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('rtsp_url', sa.String(length=500), nullable=False),
    sa.Column('rtsp_username', sa.String(length=200), nullable=True),
    sa.Column('rtsp_password', sa.String(length=200), nullable=True),
    sa.Column('covers', sa.JSON(), nullable=False),
    sa.Column('segment_seconds', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('removed_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cameras_org_id'), ['org_id'], unique=False)

    op.create_table('camera_status',
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('recorder_id', sa.String(length=100), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('last_packet_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_segment_end', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reconnects', sa.Integer(), nullable=False),
    sa.Column('spool_bytes', sa.Integer(), nullable=False),
    sa.Column('spool_limit_bytes', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.PrimaryKeyConstraint('camera_id')
    )
    op.create_table('evidence_holds',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=True),
    sa.Column('start_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verification_id', sa.String(length=32), nullable=True),
    sa.Column('org_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('flag_id', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('released_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('released_by', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evidence_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_holds_camera_id'), ['camera_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_holds_flag_id'), ['flag_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_holds_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_holds_verification_id'), ['verification_id'], unique=False)

    op.create_table('recording_gaps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('start_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recording_gaps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_gaps_camera_id'), ['camera_id'], unique=False)

    op.create_table('segments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.String(length=64), nullable=False),
    sa.Column('start_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('object_key', sa.String(length=300), nullable=False),
    sa.Column('recorder_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('object_key')
    )
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.create_index('ix_segments_camera_start', ['camera_id', 'start_at'], unique=False)
        batch_op.create_index('ix_segments_end', ['end_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_segments_org_id'), ['org_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segments_org_id'))
        batch_op.drop_index('ix_segments_end')
        batch_op.drop_index('ix_segments_camera_start')

    op.drop_table('segments')
    with op.batch_alter_table('recording_gaps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_gaps_camera_id'))

    op.drop_table('recording_gaps')
    with op.batch_alter_table('evidence_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_holds_verification_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_holds_org_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_holds_flag_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_holds_camera_id'))

    op.drop_table('evidence_holds')
    op.drop_table('camera_status')
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cameras_org_id'))

    op.drop_table('cameras')
    op.drop_table('retention_runs')
