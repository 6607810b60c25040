"""camera passwords are stored sealed (ingest/credentials.py): room for the sealed form

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Values stored in clear stay readable; recorders seal them with the region's key on their next
    # registry read, `dualcheck cameras seal` does all at once.
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.alter_column('rtsp_password', existing_type=sa.String(length=200), type_=sa.String(length=500),
                              existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.alter_column('rtsp_password', existing_type=sa.String(length=500), type_=sa.String(length=200),
                              existing_nullable=True)
