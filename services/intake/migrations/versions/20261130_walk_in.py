"""walk-in filing: the application a window clerk filed for the person at the counter, and the person's consent

Revision ID: 5e2a9c7d3b18
Revises: 7c41d2b9e0a3
Create Date: 2026-11-30 10:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.types

revision: str = '5e2a9c7d3b18'
down_revision: str | None = '7c41d2b9e0a3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'walk_in',
        sa.Column('application_id', sa.String(length=32), nullable=False),
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('assurance_level', sa.Integer(), nullable=False),
        sa.Column('account_created', sa.Boolean(), nullable=False),
        sa.Column('claim_code', sa.String(length=20), nullable=True),
        sa.Column('claim_expires_at', shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('clerk_id', sa.String(length=64), nullable=False),
        sa.Column('clerk_name', sa.String(length=200), nullable=True),
        sa.Column('service_point', sa.String(length=64), nullable=False),
        sa.Column('created_at', shared.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('consent_kind', sa.String(length=20), nullable=True),
        sa.Column('consent_reference', sa.String(length=200), nullable=True),
        sa.Column('consent_filename', sa.String(length=200), nullable=True),
        sa.Column('consent_content_type', sa.String(length=100), nullable=True),
        sa.Column('consent_size', sa.Integer(), nullable=True),
        sa.Column('consent_sha256', sa.String(length=64), nullable=True),
        sa.Column('consent_storage_key', sa.String(length=200), nullable=True),
        sa.Column('consent_at', shared.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('consent_by', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['application_id'], ['application.id'], name=op.f('fk_walk_in_application_id_application')),
        sa.PrimaryKeyConstraint('application_id', name=op.f('pk_walk_in')),
    )
    with op.batch_alter_table('walk_in', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_walk_in_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('walk_in', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_walk_in_person_id'))
    op.drop_table('walk_in')
