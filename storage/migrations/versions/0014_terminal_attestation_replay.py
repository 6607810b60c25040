"""terminals' device keys and attestation rule; capture attempts (liveness, attestation, replay fingerprints)

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa

from storage.models import UTCDateTime

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisations') as batch:
        batch.add_column(sa.Column('require_attestation', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('terminals') as batch:
        batch.add_column(sa.Column('require_attestation', sa.Boolean(), nullable=True))
    op.create_table(
        'device_keys',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('terminal_id', sa.String(length=64), sa.ForeignKey('terminals.id'), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('algorithm', sa.String(length=16), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False, unique=True),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.Column('last_used_at', UTCDateTime(), nullable=True),
    )
    op.create_index('ix_device_keys_terminal_id', 'device_keys', ['terminal_id'])
    op.create_index('ix_device_keys_org_id', 'device_keys', ['org_id'])
    op.create_table(
        'capture_attempts',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('org_id', sa.String(length=64), nullable=False),
        sa.Column('terminal_id', sa.String(length=64), nullable=False),
        sa.Column('insured_id', sa.String(length=64), nullable=False),
        sa.Column('settlement_ref', sa.String(length=100), nullable=True),
        sa.Column('outcome', sa.String(length=40), nullable=False),
        sa.Column('verification_id', sa.String(length=32), nullable=True, unique=True),
        sa.Column('capture_sha256', sa.String(length=64), nullable=False),
        sa.Column('liveness_method', sa.String(length=20), nullable=True),
        sa.Column('liveness_passed', sa.Boolean(), nullable=True),
        sa.Column('liveness_score', sa.Float(), nullable=True),
        sa.Column('attestation', sa.String(length=40), nullable=False),
        sa.Column('device_key_id', sa.String(length=32), nullable=True),
        sa.Column('signed_at', UTCDateTime(), nullable=True),
        sa.Column('replay_of', sa.String(length=32), nullable=True),
        sa.Column('replay', sa.JSON(), nullable=True),
        sa.Column('phash', sa.String(length=16), nullable=True),
        sa.Column('model', sa.String(length=100), nullable=True),
        sa.Column('dim', sa.Integer(), nullable=True),
        sa.Column('embedding', sa.LargeBinary(), nullable=True),
        sa.Column('fingerprint_expires_at', UTCDateTime(), nullable=True),
    )
    for col in ('created_at', 'org_id', 'terminal_id', 'insured_id', 'settlement_ref', 'capture_sha256',
                'fingerprint_expires_at'):
        op.create_index(f'ix_capture_attempts_{col}', 'capture_attempts', [col])


def downgrade() -> None:
    op.drop_table('capture_attempts')
    op.drop_table('device_keys')
    with op.batch_alter_table('terminals') as batch:
        batch.drop_column('require_attestation')
    with op.batch_alter_table('organisations') as batch:
        batch.drop_column('require_attestation')
