"""watch warnings get a workflow (state, assignee, closing note, an event history); the camera status row
gets the sub-stream's connection beside the main one's

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 10:00:00
"""
from alembic import op
import sqlalchemy as sa

import storage.models


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('watch_warnings') as batch:
        batch.add_column(sa.Column('state', sa.String(length=16), nullable=False, server_default='open'))
        batch.add_column(sa.Column('assignee', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('state_note', sa.Text(), nullable=True))
        batch.add_column(sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('closed_at', storage.models.UTCDateTime(timezone=True), nullable=True))
        batch.create_index('ix_watch_warnings_state', ['state'])
        batch.create_index('ix_watch_warnings_assignee', ['assignee'])
    op.create_table(
        'watch_warning_events',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('warning_id', sa.Integer(), sa.ForeignKey('watch_warnings.id'), nullable=False),
        sa.Column('at', storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('from_status', sa.String(length=16), nullable=True),
        sa.Column('to_status', sa.String(length=16), nullable=False),
        sa.Column('from_assignee', sa.String(length=64), nullable=True),
        sa.Column('to_assignee', sa.String(length=64), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
    )
    op.create_index('ix_watch_warning_events_warning_id', 'watch_warning_events', ['warning_id'])
    with op.batch_alter_table('camera_status') as batch:
        batch.add_column(sa.Column('sub_state', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('sub_last_packet_at', storage.models.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('sub_reconnects', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('sub_error', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('camera_status') as batch:
        for c in ('sub_error', 'sub_reconnects', 'sub_last_packet_at', 'sub_state'):
            batch.drop_column(c)
    op.drop_index('ix_watch_warning_events_warning_id', table_name='watch_warning_events')
    op.drop_table('watch_warning_events')
    with op.batch_alter_table('watch_warnings') as batch:
        batch.drop_index('ix_watch_warnings_assignee')
        batch.drop_index('ix_watch_warnings_state')
        for c in ('closed_at', 'updated_at', 'state_note', 'assignee', 'state'):
            batch.drop_column(c)
