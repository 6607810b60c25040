"""camera clocks in camera health (offset from the receive clock, jumps) and a camera's sub-stream URL

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('camera_status') as batch:
        batch.add_column(sa.Column('clock_offset_s', sa.Float(), nullable=True))
        batch.add_column(sa.Column('clock_jumps', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('cameras') as batch:
        batch.add_column(sa.Column('rtsp_sub_url', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cameras') as batch:
        batch.drop_column('rtsp_sub_url')
    with op.batch_alter_table('camera_status') as batch:
        batch.drop_column('clock_jumps')
        batch.drop_column('clock_offset_s')
