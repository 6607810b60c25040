"""camera leases and recorder heartbeats (several recorders share a region's cameras)

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import storage.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('camera_leases',
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=100), nullable=True),
    sa.Column('acquired_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('previous_holder', sa.String(length=100), nullable=True),
    sa.Column('last_end_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.PrimaryKeyConstraint('camera_id')
    )
    with op.batch_alter_table('camera_leases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_camera_leases_holder'), ['holder'], unique=False)

    op.create_table('recorders',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('shard', sa.String(length=32), nullable=False),
    sa.Column('started_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seen_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recorders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recorders_seen_at'), ['seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recorders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recorders_seen_at'))
    op.drop_table('recorders')
    with op.batch_alter_table('camera_leases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_camera_leases_holder'))
    op.drop_table('camera_leases')
