"""verifications record the face-size band and the lower threshold of their decision (uncertain band)

Revision ID: 0016
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('verifications') as batch:
        batch.add_column(sa.Column('band', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('threshold_lower', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('verifications') as batch:
        batch.drop_column('threshold_lower')
        batch.drop_column('band')
