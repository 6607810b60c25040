"""a camera's sub-stream recorded beside the main one: per camera what to record (main | both) and what
the checks read (main | sub); segments and recording gaps say which stream they belong to

Revision ID: 0020
Revises: 0018
"""
from alembic import op
import sqlalchemy as sa


revision = '0020'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cameras') as batch:
        batch.add_column(sa.Column('record_streams', sa.String(length=8), nullable=False, server_default='main'))
        batch.add_column(sa.Column('analyse_stream', sa.String(length=8), nullable=False, server_default='main'))
    with op.batch_alter_table('segments') as batch:
        batch.add_column(sa.Column('stream', sa.String(length=8), nullable=False, server_default='main'))
    with op.batch_alter_table('recording_gaps') as batch:
        batch.add_column(sa.Column('stream', sa.String(length=8), nullable=False, server_default='main'))


def downgrade() -> None:
    with op.batch_alter_table('recording_gaps') as batch:
        batch.drop_column('stream')
    with op.batch_alter_table('segments') as batch:
        batch.drop_column('stream')
    with op.batch_alter_table('cameras') as batch:
        batch.drop_column('analyse_stream')
        batch.drop_column('record_streams')
